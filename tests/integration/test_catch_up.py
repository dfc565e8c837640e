"""A worker catching up on a backlog decides what live processing (and replay) decides.

Two hours of scripted customers are published before any worker runs, topic by
topic (orders and engagement first, clickstream last), with each record's
timestamp set to its event time, as the contract asks of producers. A worker then
starts on the backlog: it has to read the co-partitioned topics in event-time
order (an order must not be handled before the cart events that led to it) and
fire the deadlines that fell due inside the backlog in line with the events
around them. Its actions must equal ``kairos replay`` on the same events.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from workers import ROOT, Worker, collect, worker_env

from kairos.launcher import create_topics, start_broker
from stream import topics

pytestmark = pytest.mark.integration

CONFIG = """
triggers:
  abandoned_cart:
    delay: 30m
policy:
  quiet_hours:
    enabled: false
"""

TOPIC_OF = {
    "session_start": "engagement",
    "nps": "engagement",
    "product_view": "clickstream",
    "add_to_cart": "clickstream",
    "page_view": "clickstream",
    "order_placed": "orders",
}


def backlog(run: str, customers: int, now: int) -> list[dict[str, object]]:
    """Each customer: a session, three views of one product, a cart; every other one orders."""
    base = now - 2 * 3600_000
    events: list[dict[str, object]] = []

    def add(customer: str, etype: str, ts: int, **fields: object) -> None:
        events.append(
            {"event_id": f"{customer}-{len(events)}", "type": etype, "customer_id": customer}
            | {"ts": ts, **fields}
        )

    for i in range(customers):
        customer, t = f"{run}-c{i:04d}", base + i * 7_000
        add(customer, "session_start", t)
        for k in range(3):
            add(customer, "product_view", t + 1_000 + k * 1_000, product_id=f"sku-{i % 7}")
        add(customer, "add_to_cart", t + 10_000, product_id=f"sku-{i % 7}", price=12.0)
        if i % 2 == 0:
            add(customer, "order_placed", t + 20_000, order_id=f"o-{i}", total=12.0)
        if i % 3 == 0:
            add(customer, "nps", t + 30_000, score=3)
    add(f"{run}-sentinel", "page_view", now - 60_000, url="/")  # replay's clock runs to here
    return sorted(events, key=lambda e: e["ts"])  # type: ignore[arg-type, return-value]


async def publish(bootstrap: str, events: list[dict[str, object]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic in ("orders", "engagement", "clickstream"):  # not in event-time order
            for e in events:
                if TOPIC_OF[str(e["type"])] == topic:
                    key = str(e["customer_id"]).encode()
                    await producer.send(topic, orjson.dumps(e), key=key, timestamp_ms=e["ts"])  # type: ignore[arg-type]
        await producer.flush()
    finally:
        await producer.stop()


def replay(events: list[dict[str, object]], config: Path, tmp: Path) -> dict[str, tuple[str, str]]:
    path, out = tmp / "events.jsonl", tmp / "decisions.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kairos.cli",
            "replay",
            str(path),
            "--config",
            str(config),
            "--decisions-out",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    decisions = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return {d["action_id"]: (d["trigger"], d["status"]) for d in decisions}


async def test_a_worker_catching_up_decides_what_replay_decides(
    redis_url: str, tmp_path: Path
) -> None:
    # A broker of its own: records other tests published to these topics, newer than this
    # backlog, would stand before it in the same partitions (a lane is read in offset order).
    with start_broker() as broker:
        await catch_up(broker.url, broker.bootstrap, redis_url, tmp_path)


async def catch_up(broker_url: str, bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    run = f"cu{uuid.uuid4().hex[:6]}"
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG)
    events = backlog(run, customers=120, now=time.time_ns() // 1_000_000)
    expected = replay(events, config, tmp_path)
    triggers = {trigger for trigger, _ in expected.values()}
    assert {"welcome", "abandoned_cart", "limited_time_offer", "nps_detractor"} <= triggers

    await create_topics(bootstrap, list(topics.ALL), 4)  # as the worker would (KAIROS_PARTITIONS)
    await publish(bootstrap, events)
    worker = Worker(worker_env(broker_url, redis_url, config, f"itest-{run}"))
    try:
        mine = lambda r: str(r["customer_id"]).startswith(run)  # noqa: E731
        actions = await collect(bootstrap, "actions", mine, len(expected), timeout=90)
        time.sleep(2)  # anything extra would show now
        actions = await collect(bootstrap, "actions", mine, len(expected) + 1, timeout=3)
    finally:
        worker.stop()
        tail = worker.tail()
    live = {a["action_id"]: (a["trigger"], a["status"]) for a in actions}
    missing = {k: v for k, v in expected.items() if k not in live}
    extra = {k: v for k, v in live.items() if k not in expected}
    differ = {
        k: (expected[k], live[k]) for k in expected.keys() & live.keys() if expected[k] != live[k]
    }
    summary = f"{len(expected)} expected, {len(live)} live: {len(missing)} missing, "
    summary += f"{len(extra)} extra, {len(differ)} differ"
    assert (missing, extra, differ) == ({}, {}, {}), f"{summary}\n{tail}"
    assert len(actions) == len(live)  # and none twice
