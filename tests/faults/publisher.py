"""Publish a traffic plan on schedule, and remember where every record landed.

The producer's ``client_id`` starts with ``faults-``, so the proxy spares it: producers
are other services, and their outage is not the fault under test. Each record is sent
at its ``at_ms`` (the event time it carries); the broker's answer gives its partition
and offset, the evidence a lost decision is traced back to.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from .traffic import Plan

CLIENT_ID = "faults-publisher"


@dataclass(slots=True)
class Published:
    """Where each record of the plan went: (topic, partition, offset), by index in the plan."""

    positions: list[tuple[str, int, int] | None] = field(default_factory=list)
    max_behind_ms: int = 0  # worst lateness of a send against its schedule
    failed: int = 0

    def by_event_id(self, plan: Plan) -> dict[str, tuple[str, int, int]]:
        """First position of each event id (duplicates share an id; the first one counts)."""
        where: dict[str, tuple[str, int, int]] = {}
        for record, position in zip(plan.records, self.positions, strict=True):
            if record.event_id and position and record.event_id not in where:
                where[record.event_id] = position
        return where


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def publish(plan: Plan, bootstrap: str) -> Published:
    """Send every record at its time; returns once the broker acknowledged them all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=CLIENT_ID, linger_ms=5, acks="all"
    )
    await producer.start()
    result = Published()
    try:
        futures: list[asyncio.Future[RecordMetadata]] = []
        for record in plan.records:
            wait = record.at_ms - now_ms()
            if wait > 0:
                await asyncio.sleep(wait / 1000)
            result.max_behind_ms = max(result.max_behind_ms, -wait)
            # send() only queues the record; its future resolves with the broker's answer
            sent: asyncio.Future[RecordMetadata] = await producer.send(
                record.topic, record.value, key=record.key
            )
            futures.append(sent)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        await producer.stop()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            result.failed += 1
            result.positions.append(None)
        else:
            result.positions.append((outcome.topic, outcome.partition, outcome.offset))
    return result
