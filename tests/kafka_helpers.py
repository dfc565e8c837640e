"""Small async Kafka helpers for integration tests: produce records, read a topic back.

The session broker is shared and memory-only, so each test should use its own topic names
(`unique_topic`). Tansu auto-creates any topic a client asks about with 4 partitions: call
`kairos.launcher.create_topics` first when a test needs another partition count.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient


class Consumed(NamedTuple):
    key: bytes | None
    value: bytes
    partition: int
    offset: int


def unique_topic(prefix: str = "test") -> str:
    """A topic name no other test uses on the shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send `(key, value)` records in order and wait for acks; return `(partition, offset)`s."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metadata]


async def consume_all(
    bootstrap: str, topic: str, *, min_count: int, timeout: float = 10.0
) -> list[Consumed]:
    """Read `topic` from the beginning without a consumer group (no rebalance wait).

    Polls until at least `min_count` records arrived or `timeout` seconds passed, and
    returns what it got ordered by (partition, offset); the caller asserts on the count.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[Consumed] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < min_count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            for messages in batches.values():
                got.extend(Consumed(m.key, m.value, m.partition, m.offset) for m in messages)
    finally:
        await consumer.stop()
    return sorted(got, key=lambda record: (record.partition, record.offset))


async def partition_count(bootstrap: str, topic: str) -> int:
    """Number of partitions of `topic` as the broker reports it (creates it if absent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"]:
        raise AssertionError(f"describe {topic!r} failed: error {description['error_code']}")
    return len(description["partitions"])
