"""The ``deliveries`` topic read from its start, grouped by ``action_id``: what the
dispatcher tests assert on."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

FINAL = ("delivered", "failed", "dead", "disabled", "suppressed_consent", "suppressed_priority")


class Deliveries:
    def __init__(self, bootstrap: str) -> None:
        self.by_action: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._consumer = AIOKafkaConsumer(
            "deliveries",
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def __aenter__(self) -> Deliveries:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=100)
        for messages in batches.values():
            for m in messages:
                record = orjson.loads(m.value)
                self.by_action[record["action_id"]].append(record)

    async def wait(self, cond: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; deliveries seen: {dict(self.by_action)}")
            await self.poll()

    async def outcomes(self, action_id: str, *final: str, timeout: float = 20.0) -> list[str]:
        """Wait until ``action_id`` has an outcome in ``final``; return its outcomes."""

        def done() -> bool:
            return any(r["outcome"] in final for r in self.by_action[action_id])

        await self.wait(done, timeout)
        return [r["outcome"] for r in self.by_action[action_id]]

    def last(self, action_id: str) -> dict[str, Any]:
        return self.by_action[action_id][-1]

    async def settle(self, quiet_s: float = 1.0, limit_s: float = 10.0) -> None:
        """Read on until nothing new arrived for ``quiet_s`` (the dispatchers have stopped)."""
        deadline = time.monotonic() + limit_s
        quiet_until = time.monotonic() + quiet_s
        while time.monotonic() < min(quiet_until, deadline):
            before = sum(len(r) for r in self.by_action.values())
            await self.poll()
            if sum(len(r) for r in self.by_action.values()) != before:
                quiet_until = time.monotonic() + quiet_s

    def finished(self, ids: Iterable[str]) -> bool:
        return all(any(r["outcome"] in FINAL for r in self.by_action[a]) for a in ids)

    def counts(self, ids: Iterable[str]) -> Counter[str]:
        """How many records of each outcome the actions ``ids`` have."""
        return Counter(r["outcome"] for a in ids for r in self.by_action[a])

    def flagged(self, ids: Iterable[str]) -> set[str]:
        """Actions whose delivery the dispatcher recorded as possibly sent before."""
        return {a for a in ids if any(r.get("maybe_resent") for r in self.by_action[a])}
