"""Replay throughput on two workloads, with a baseline from the same run.

    .venv/bin/python bench/replay_bench.py [--events 300000] [--jobs 2] [--profile]

Workloads, each written to a temporary JSON-lines file:
- ``simulator``: what ``kairos simulate --out`` writes (the demo's shoppers), ``--events``
  events of 30,000 customers over 3 days;
- ``mix60d``: a heavier seeded mix (``generate`` below), about 40 events per customer
  over 60 days, shuffled, with a few bad lines: long histories, so more timers,
  churn checks and decisions per event;
- ``long-history``: ``kairos simulate --profile long-history`` (``--long-events``
  events): ~50 events per customer over 6 months, sessions of 5-20 events, most
  customers returning, a third of the timestamps ISO-8601 strings with offsets.

For each: the JSON-parse floor (``orjson.loads`` of every line, one process: the least
any replay must do), ``kairos replay`` on one process, and on ``--jobs`` processes
(what the CLI does by default), and ``decisions_sha256``: a digest of what
``kairos replay --decisions-out`` would write on ``--jobs`` processes, equal between
commits unless a decision changed (``bench/replay_digest.py --against REV`` checks).
Prints a line per workload, then one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import Config
from core.durations import DAY as DAY_MS
from kairos import simulate, simulate_history
from kairos.replay import Result, run_replay

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
CATEGORIES = ("shoes", "shirts", "bags", "watches", "books", "games", "kitchen", "garden")


def generate(n: int, seed: int = 7, days: int = 60) -> list[bytes]:
    """About ``n`` JSON lines: sessions of ~25 customers per 1,000 events, in no set order."""
    rng = random.Random(seed)
    products = [
        (f"sku-{i:04d}", rng.choice(CATEGORIES), round(rng.uniform(5, 250), 2)) for i in range(500)
    ]
    customers = [f"cust-{i:07d}" for i in range(max(1, n // 40))]
    lines: list[bytes] = []
    seq = 0

    def emit(obj: dict) -> None:
        nonlocal seq
        seq += 1
        obj["event_id"] = f"ev-{seq:09d}"
        lines.append(orjson.dumps(obj))

    for cid in customers:
        lines.append(
            orjson.dumps(
                {
                    "topic": "profiles",
                    "customer_id": cid,
                    "value": {
                        "email": f"{cid}@example.com",
                        "timezone": rng.choice(("UTC", "Europe/Berlin", "America/New_York")),
                        "consent": {"email": True, "push": rng.random() < 0.8, "sms": False},
                    },
                }
            )
        )
    while len(lines) < n:
        cid = rng.choice(customers)
        ts = START + rng.randrange(days * DAY)
        sid = f"s-{rng.getrandbits(32):08x}"
        base = {"customer_id": cid, "session_id": sid}

        def ev(etype: str, base: dict = base, **fields: object) -> None:
            nonlocal ts
            ts += rng.randrange(5_000, 90_000)
            emit({**base, "type": etype, "ts": ts, **fields})

        ev(rng.choice(("session_start", "app_open")))
        for _ in range(rng.randrange(0, 3)):
            ev("page_view", url=f"/p/{rng.randrange(100)}")
        if rng.random() < 0.4:
            ev("search", query=rng.choice(CATEGORIES))
        focus = rng.choice(products)
        cart: list[tuple[str, str, float]] = []
        for _ in range(rng.randrange(1, 7)):
            pid, cat, price = focus if rng.random() < 0.5 else rng.choice(products)
            ev("product_view", product_id=pid, category=cat, price=price, currency="EUR")
            if rng.random() < 0.15:
                ev("add_to_cart", product_id=pid, quantity=1, price=price, currency="EUR")
                cart.append((pid, cat, price))
        if cart and rng.random() < 0.1:
            ev("remove_from_cart", product_id=cart.pop()[0])
        if cart and rng.random() < 0.55:
            value = round(sum(p for _, _, p in cart), 2)
            ev("checkout_started", cart_value=value, currency="EUR")
            if rng.random() < 0.3:
                ev("checkout_started", cart_value=value, currency="EUR")
            if rng.random() < 0.6:
                oid = f"o-{rng.getrandbits(40):010x}"
                items = [{"product_id": p, "quantity": 1, "price": pr} for p, _, pr in cart]
                ev("order_placed", order_id=oid, total=value, currency="EUR", items=items)
                ev("order_paid", order_id=oid)
                roll = rng.random()
                if roll < 0.05:
                    ev("order_cancelled", order_id=oid)
                elif roll < 0.08:
                    ev("order_refunded", order_id=oid)
                else:
                    ts += DAY
                    ev("order_shipped", order_id=oid)
        roll = rng.random()
        if roll < 0.2:
            ev(rng.choice(("email_open", "email_click", "push_open")), campaign_id="c1")
        elif roll < 0.24:
            ev("nps", score=rng.randrange(0, 11))
        elif roll < 0.26:
            ev("review", score=rng.randrange(1, 6))
        elif roll < 0.262:
            ev("unsubscribe", channel=rng.choice(("email", "push", "all")))
        if rng.random() < 0.001:
            lines.append(b'{"type": "product_view", "customer_id": "broken"}')
    rng.shuffle(lines)
    return lines[:n]


def simulator_lines(n: int, seed: int = 7) -> list[bytes]:
    """Lines as ``kairos simulate --out F --events n --customers 30000 --span 3d`` writes them."""
    lines = []
    for topic, key, value in simulate.generate(30_000, n, seed, START, 3 * DAY_MS):
        line = {"topic": topic, "customer_id": key, "value": value}
        lines.append(orjson.dumps(line if topic == "profiles" else value))
    return lines


def long_history_lines(n: int, seed: int = 7) -> list[bytes]:
    """Lines as ``kairos simulate --profile long-history --out F --events n`` writes them."""
    customers = simulate_history.customers_for(n)
    return simulate_history.lines(n, customers, seed, simulate.FILE_START, 182 * DAY_MS)


def decisions_sha256(result: Result) -> str:
    """sha256 of the bytes ``kairos replay --decisions-out`` writes for ``result``."""
    digest = hashlib.sha256()
    for d in result.decisions or ():
        digest.update(orjson.dumps(d.to_record()) + b"\n")
    return digest.hexdigest()


def parse_floor(lines: list[bytes]) -> float:
    """Lines per second that ``orjson.loads`` alone manages on one process."""
    loads = orjson.loads
    started = time.perf_counter()
    for line in lines:
        loads(line)
    return len(lines) / (time.perf_counter() - started)


def measure(name: str, lines: list[bytes], jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        out: dict = {"lines": len(lines), "parse_lps": round(parse_floor(lines))}
        for n in sorted({1, jobs}):
            gc.collect()
            started = time.perf_counter()
            (result,) = run_replay([path], [Config()], jobs=n)
            seconds = time.perf_counter() - started
            out[f"replay_eps_{n}"] = round(result.events / seconds)
        gc.collect()
        (kept,) = run_replay([path], [Config()], jobs=jobs, keep_decisions=True)
        out["decisions_sha256"] = decisions_sha256(kept)
        out.update(
            events=result.events,
            invalid=result.invalid,
            timers_fired=result.timers_fired,
            decisions=sum(sum(c.values()) for c in result.fired.values()),
            jobs=jobs,
            replay_eps=out[f"replay_eps_{jobs}"],
        )
    print(
        f"{name}: {out['events']:,} events, {out['decisions']:,} decisions, "
        f"{out['timers_fired']:,} timers; parse floor {out['parse_lps']:,} lines/s; replay "
        f"{out['replay_eps_1']:,} ev/s on 1 process, {out['replay_eps']:,} on {jobs}; "
        f"decisions sha256 {out['decisions_sha256'][:16]}",
        file=sys.stderr,
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="events per workload")
    parser.add_argument(
        "--long-events", type=int, default=1_000_000, help="events of the long-history workload"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--profile", action="store_true", help="cProfile long-history on 1 process")
    args = parser.parse_args()
    if args.profile:
        lines = long_history_lines(args.long_events, args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "events.jsonl")
            Path(path).write_bytes(b"\n".join(lines) + b"\n")
            profiler = cProfile.Profile()
            profiler.runcall(run_replay, [path], [Config()], jobs=1)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return 0
    workloads = {
        "simulator": measure("simulator", simulator_lines(args.events, args.seed), args.jobs),
        "mix60d": measure("mix60d", generate(args.events, args.seed), args.jobs),
        "long-history": measure(
            "long-history", long_history_lines(args.long_events, args.seed), args.jobs
        ),
    }
    print(
        orjson.dumps(
            {
                "bench": "replay",
                "replay_eps": workloads["simulator"]["replay_eps"],
                "replay_long_history_eps": workloads["long-history"]["replay_eps"],
                "jobs": args.jobs,
                "workloads": workloads,
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            }
        ).decode()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
