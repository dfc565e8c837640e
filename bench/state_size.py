"""State bytes per customer and process RSS at N customers, in-process (no broker).

    python -m bench.state_size --customers 1000000

Runs the core over simulated traffic for a sample of customers to get realistic states,
then fills a real ``CustomerStore`` the way a worker's memory store holds them: every
customer's encoded state in the table's dict (plus Faust's key->partition map), and the
decoded cache up to ``KAIROS_STATE_CACHE`` (200,000). Customers beyond the sample reuse
a sampled state under their own id. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import orjson

from core import engine
from core.config import Config
from state import codec
from state.store import CustomerStore
from stream.app import memory_store_partitions
from stream.events import decode_event, decode_profile
from stream.settings import Settings


class _Data:  # the shape of faust's memory Store that CustomerStore reads
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._key_partition: dict[bytes, int] = {}


class MemoryTable:
    """What ``CustomerStore`` reads of a Faust table with the memory store, without Faust."""

    def __init__(self) -> None:
        self.data = _Data()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample_states(customers: int, events: int) -> list[bytes]:
    from kairos.simulate import generate

    cfg, states = Config(), {}
    now = time.time_ns() // 1_000_000
    for topic, key, value in generate(customers, events, 7, now - 3_600_000, 3_600_000):
        raw = orjson.dumps(value)
        if topic == "profiles":
            cid, profile = decode_profile(raw, key.encode())  # type: ignore[misc]
            engine.on_profile(states.setdefault(cid, engine.new_state(cid)), profile)
            continue
        ev = decode_event(raw, topic, key.encode())
        state = states.setdefault(key, engine.new_state(key))
        engine.on_event(state, ev, now, cfg)  # type: ignore[arg-type]
    return [codec.encode(s) for s in states.values()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()
    sample = sample_states(args.sample, args.sample * 15)
    del sys.modules["kairos.simulate"]
    gc.collect()
    before = rss_mb()
    table = MemoryTable()
    cache_size = Settings().state_cache
    store = CustomerStore(table, None, "changelog", cache_size)  # type: ignore[arg-type]
    data, where = table.data.data, memory_store_partitions(table.data)
    total = 0
    for i in range(args.customers):
        raw = sample[i % len(sample)]
        key = f"cust-{i:07d}".encode()
        data[key] = raw
        where[key] = i % 8
        total += len(raw)
    for i in range(min(args.customers, cache_size)):  # the decoded working set
        store.get(f"cust-{i:07d}", i % 8)
    after = rss_mb()
    print(
        orjson.dumps(
            {
                "customers": args.customers,
                "sampled_states": len(sample),
                "bytes_per_customer": round(total / args.customers),
                "rss_mb": round(after, 1),
                "store_mb": round(after - before, 1),
                "decoded_cache": cache_size,
            }
        ).decode()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
