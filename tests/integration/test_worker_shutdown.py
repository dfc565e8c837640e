"""SIGTERM: a busy worker persists its effects, commits its offsets and exits, within a bound.

After a clean stop the next worker has nothing to redo: the group's committed offsets
are at the end of every input partition the worker read, and every customer's state is
on the changelog.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from test_worker import CONFIG, event
from workers import Worker, collect, worker_env

from kairos.launcher import Broker

pytestmark = pytest.mark.integration

SHUTDOWN_BOUND_S = 15.0


async def committed_and_end(bootstrap: str, group: str, topic: str) -> list[tuple[int, int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(tps)
        return [((await consumer.committed(tp)) or 0, ends[tp]) for tp in tps]
    finally:
        await consumer.stop()


async def test_sigterm_persists_commits_and_exits_within_the_bound(
    broker: Broker, bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG.format(delay="1h"))
    app_id = f"shutdown-{uuid.uuid4().hex[:6]}"
    worker = Worker(worker_env(broker.url, redis_url, config, app_id))
    customers = [f"sd-{uuid.uuid4().hex[:6]}-{i}" for i in range(300)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        first = customers[0]
        await producer.send_and_wait(
            "clickstream", event(first, "page_view")[1], key=first.encode()
        )
        assert await collect(bootstrap, "stage-changes", lambda r: r["customer_id"] == first, 1, 40)
        for c in customers[1:]:  # keep it busy up to the signal
            key, value = event(c, "add_to_cart", product_id="sku-s", price=2.0)
            await producer.send("clickstream", value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    await asyncio.sleep(0.3)
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    code = worker.process.wait(timeout=SHUTDOWN_BOUND_S + 5)
    took = time.monotonic() - started
    worker.stop()
    assert code == 0, worker.tail()
    assert took < SHUTDOWN_BOUND_S, f"took {took:.1f}s\n{worker.tail()}"

    offsets = await committed_and_end(bootstrap, app_id, "clickstream")
    assert all(committed >= end for committed, end in offsets if end), offsets

    stored = await changelog_keys(bootstrap, f"{app_id}-customers-changelog")
    assert set(customers) <= stored, f"{len(set(customers) - stored)} states not on the changelog"


async def changelog_keys(bootstrap: str, topic: str) -> set[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    keys: set[str] = set()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                return keys
            for messages in batches.values():
                keys.update(m.key.decode() for m in messages if m.key)
    finally:
        await consumer.stop()
