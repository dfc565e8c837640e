"""The worker's pending timers: a ``core.driver.Timers`` per assigned partition.

Customer state is the source of truth (``CustomerState.timers``); a partition's
queue only says *when to look*, and ``Timers.fire`` skips an entry the state no
longer holds (cancelled or superseded), so nothing is scanned and nothing fires
twice. Triggers extend a deadline by re-arming when the old one pops, so each
pending timer has about one entry however often it is pushed back. Replay and
the tests fire timers with the same ``Timers`` (``core.driver``).
"""

from __future__ import annotations

from collections.abc import Iterable

from core.driver import Timers
from core.model import TimerChange


class TimerIndex:
    def __init__(self) -> None:
        self._timers: dict[int, Timers] = {}

    def of(self, partition: int) -> Timers | None:
        """``partition``'s timers, or None when this worker does not hold them."""
        return self._timers.get(partition)

    def schedule(self, partition: int, changes: Iterable[TimerChange]) -> None:
        """Queue the timers ``changes`` set for a customer of ``partition``."""
        timers = self._timers.get(partition)
        if timers is None:
            timers = self._timers[partition] = Timers()
        timers.schedule(changes)

    def partitions(self) -> list[int]:
        return list(self._timers)

    def rebuild(self, partition: int, entries: Iterable[tuple[int, str, str]]) -> None:
        """Replace a partition's timers by ``(due, customer_id, kind)`` of recovered states."""
        timers = self._timers[partition] = Timers()
        timers.rebuild(entries)

    def drop(self, partition: int) -> None:
        self._timers.pop(partition, None)

    def __contains__(self, partition: int) -> bool:
        """Whether this worker holds ``partition``'s timers (it is assigned and recovered)."""
        return partition in self._timers

    def __len__(self) -> int:
        return sum(len(timers) for timers in self._timers.values())
