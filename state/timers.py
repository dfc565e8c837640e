"""The in-memory index of pending timers: one heap per partition, ordered by due time.

Customer state is the source of truth (``CustomerState.timers``); this index
only says *when to look*. A popped entry whose due no longer matches the
state was cancelled or superseded and does nothing (``core.engine.on_timer``
checks), so nothing is scanned and nothing fires twice. Triggers extend a
deadline by re-arming when the old one pops, so each pending timer has about
one heap entry however often it is pushed back.
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterable, Iterator


class TimerIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str, str]]] = {}

    def schedule(self, partition: int, customer_id: str, kind: str, due: int) -> None:
        heapq.heappush(self._heaps.setdefault(partition, []), (due, customer_id, kind))

    def pop_due(self, until: int, skip: Container[int] = ()) -> Iterator[tuple[int, int, str, str]]:
        """Yield ``(partition, due, customer_id, kind)`` for entries due at or before ``until``.

        Partitions in ``skip`` are left alone.
        """
        for partition, heap in list(self._heaps.items()):
            if partition in skip:
                continue
            while heap and heap[0][0] <= until:
                due, customer_id, kind = heapq.heappop(heap)
                yield partition, due, customer_id, kind

    def pop_partition(self, partition: int, until: int) -> Iterator[tuple[int, str, str]]:
        """Yield ``(due, customer_id, kind)`` for ``partition``'s entries due by ``until``, in order."""
        heap = self._heaps.get(partition)
        while heap and heap[0][0] <= until:
            yield heapq.heappop(heap)

    def partitions(self) -> list[int]:
        return list(self._heaps)

    def rebuild(self, partition: int, timers: Iterable[tuple[str, str, int]]) -> None:
        """Replace a partition's heap from ``(customer_id, kind, due)`` found in recovered state."""
        heap = [(due, customer_id, kind) for customer_id, kind, due in timers]
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def drop(self, partition: int) -> None:
        self._heaps.pop(partition, None)

    def __contains__(self, partition: int) -> bool:
        """Whether this worker holds ``partition``'s timers (it is assigned and recovered)."""
        return partition in self._heaps

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())
