"""Tail the output topics from the beginning while a scenario runs.

A consumer without a group (no rebalances, no commits) whose ``client_id`` starts with
``faults-``, so proxy faults leave it alone: what it reads is what the Kairos processes
wrote, not what a cut-off reader managed to see. It reads every offset: a fetch that
starts past the next offset (seen once, under load, on the dev broker) is read again
from there, and counted in ``Outputs.refetched``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from stream import topics

CLIENT_ID = "faults-observer"
WATCHED = (topics.ACTIONS, topics.DELIVERIES, topics.DEAD_LETTERS)


@dataclass(slots=True)
class Outputs:
    """Decoded output records, in the order read (per partition: offset order)."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    undecodable: int = 0
    refetched: list[tuple[str, int, int, int]] = field(default_factory=list)  # tp, expected, got


class Observer:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.outputs = Outputs()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *WATCHED,
            bootstrap_servers=self.bootstrap,
            client_id=CLIENT_ID,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        into = {
            topics.ACTIONS: self.outputs.actions,
            topics.DELIVERIES: self.outputs.deliveries,
            topics.DEAD_LETTERS: self.outputs.dead_letters,
        }
        expected: dict[Any, int] = {}  # each topic is new to the run: it starts at 0
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                for message in messages:
                    want = expected.get(tp, 0)
                    if message.offset < want:
                        continue  # read again after a seek back
                    if message.offset > want and self._read_again(tp, want, message.offset):
                        break
                    expected[tp] = message.offset + 1
                    try:
                        into[tp.topic].append(orjson.loads(message.value or b"null"))
                    except orjson.JSONDecodeError:
                        self.outputs.undecodable += 1

    def _read_again(self, tp: Any, want: int, got: int) -> bool:
        """Seek back to ``want`` (at most twice for the same gap: then it is a hole)."""
        assert self._consumer is not None
        self.outputs.refetched.append((tp.topic, tp.partition, want, got))
        if sum(r[:3] == (tp.topic, tp.partition, want) for r in self.outputs.refetched) > 2:
            return False
        self._consumer.seek(tp, want)
        return True
