"""Restart after kill -9 at scale: ``python -m bench.restart_scale --customers 100000,1000000``.

For each size, one ``rocksdb://`` worker takes that many new customers (one cart each,
so every state holds a pending deadline that a restart must re-arm), checkpoints them,
and is killed with SIGKILL; a new worker on the same data directory is timed to
``/ready`` (partitions recovered, every timer re-indexed). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from bench import traffic
from bench.engine import EngineWorker, drain_rate
from bench.run import BENCH_CONFIG, PARTITIONS, log, wait_ready, worker_env
from kairos.launcher import create_topics, start_broker, start_redis
from stream import topics

HOUR_MS = 3_600_000


def measure(customers: int) -> dict[str, float | int]:
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(start_broker())
        redis = stack.enter_context(start_redis())
        asyncio.run(create_topics(broker.bootstrap, list(topics.ALL), PARTITIONS))
        due = traffic.now_ms() + HOUR_MS  # nothing fires while we measure
        carts = traffic.carts(customers, due, 0, 90_000, prefix=f"r{customers}")
        records = asyncio.run(traffic.produce_fast(broker.bootstrap, carts, PARTITIONS))
        config = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "triggers.yaml"
        config.write_text(BENCH_CONFIG)
        env = worker_env(broker.url, redis.url, config, f"restart-{uuid.uuid4().hex[:6]}")
        env.update(KAIROS_STORE="rocksdb://", KAIROS_DATA_DIR=tempfile.mkdtemp())
        first = EngineWorker(env)
        stack.callback(first.stop, signal.SIGKILL)
        drained = drain_rate([first], records, timeout=1800)
        while first.metric("kairos_state_flushed_total") < customers:  # all checkpointed
            time.sleep(0.5)
        first.stop(signal.SIGKILL)
        again = EngineWorker(env, port=first.port)
        stack.callback(again.stop, signal.SIGKILL)
        ready_s = wait_ready(again, 600)
        time.sleep(0.5)  # the gauge is set on the next timer tick
        pending = again.metric("kairos_timers_pending")
        return {
            "customers": customers,
            "drain_eps": drained["eps"],
            "restart_to_ready_s": round(ready_s, 2),
            "timers_pending_after": int(pending),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", default="100000,1000000")
    args = parser.parse_args()
    results = []
    for n in (int(x) for x in args.customers.split(",")):
        results.append(measure(n))
        log(f"restart at {n:,} customers: {results[-1]}")
    print(orjson.dumps({"restart": results}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
