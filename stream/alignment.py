"""Fetched records of co-partitioned topics, handed on in event-time order and never skipped.

All input topics are keyed by ``customer_id`` with the same partition count, so
partition ``p`` of every input topic holds the same customers: together they are
one *task* (Kafka Streams' word). Faust hands records on in the order fetches
return them, topic by topic. Live, that is close to event time; while a worker
catches up after a failover it is not: a customer's ``order_placed`` (topic
``orders``) can be handled before the ``add_to_cart`` (topic ``clickstream``) that
came before it, and the decisions differ from what live processing (and
``kairos replay``) would have made.

:class:`Aligner` does what Kafka Streams' ``PartitionGroup`` does with
``max.task.idle.ms``: it buffers each topic-partition's fetched records and, per
task, always hands on the record with the lowest timestamp among the heads of its
buffers. When one of the task's partitions has nothing buffered but is known to
have more on the broker (its high watermark, its end offset listed after a seek, or
a fetch that jumped ahead say so), or no fetch has told its end since it was sought,
the task waits for it, at most ``max_idle_ms``;
then it goes on without it (a partition that is slow to fetch must not stall the
others for ever). As in Kafka Streams since KIP-695, a partition that only *may*
get more records is not waited for.

It also guarantees that no offset is skipped. Each topic-partition expects the
next offset after the last one it buffered; a fetched record past that (a jump,
as stale fetches after a rebalance produce) is not accepted: :meth:`add` asks the
caller to seek back to the expected offset. Only when the same jump comes back
``MAX_RESEEKS`` times in a row is it taken as a real hole in the log (compaction,
transaction markers) and passed over. With ``require_seek``, a partition's records are
taken only once it has been sought in the current assignment (before the consumer's seek
to the committed offset, a fetch may come from any position); records it did not take
for that reason make :meth:`seek` ask the caller to move the consumer back, since the
consumer's position may have passed them. Records can also be lost between the consumer
and :meth:`add` (Faust drops the rest of a fetch when a rebalance begins): between two
fetches, :meth:`check` compares the consumer's position with what arrived and asks for a
seek back over any difference. :meth:`ready` keeps the records of partitions the caller
is not ``accepting`` yet (state not restored).

Pure bookkeeping: no I/O, no Faust; the consumer in ``stream/app.py`` drives it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_RESEEKS = 2
# What ``highwater`` returns for a partition no fetch response has described since its
# last seek: its lag is not known, so its task waits for it (at most ``max_idle_ms``),
# as Kafka Streams does while a partition's lag is unknown (KIP-695).
UNKNOWN = -1


class Record(Protocol):
    tp: Hashable
    topic: str
    partition: int
    offset: int
    timestamp: float | None


@dataclass(slots=True)
class _Lane:
    """One topic-partition: its buffered records and where it stands."""

    records: deque[Any] = field(default_factory=deque)
    next_offset: int | None = None  # the next offset to hand on (None: not known yet)
    fetch_offset: int | None = None  # the next offset expected from a fetch
    floor: int | None = None  # where the last seek put it (a committed offset)
    sought_at: float = 0.0  # when (the aligner's clock)
    reseeks: int = 0  # seeks back to the same expected offset in a row
    known_end: int | None = None  # an offset the log is known to reach (since the last seek)

    def seek_back(self, seen_end: int) -> bool:
        """Whether to read again from ``fetch_offset``: records up to ``seen_end`` exist.

        False once the same gap has come back ``MAX_RESEEKS`` times in a row: a hole in
        the log (compaction, a transaction marker), to be passed over.
        """
        if self.reseeks >= MAX_RESEEKS:
            return False
        self.reseeks += 1
        self.known_end = max(seen_end, self.known_end or 0)  # the task waits for them
        return True


@dataclass(frozen=True, slots=True)
class Jump:
    """A fetch returned ``got`` where ``expected`` was next: seek ``tp`` back to ``expected``."""

    tp: Hashable
    expected: int
    got: int


class Aligner:
    def __init__(
        self,
        aligned_topics: frozenset[str],
        max_idle_ms: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        require_seek: bool = False,
    ) -> None:
        self.aligned_topics = aligned_topics
        # Take a partition's records only once the consumer has sought it in this
        # assignment (to its committed offset): before that, a fetch may come from any
        # position, and taking it would skip or reorder records.
        self.require_seek = require_seek
        self._sought: set[Hashable] = set()
        # (lowest, highest) offset of the records not taken because not sought yet
        self._unsought: dict[Hashable, tuple[int, int]] = {}
        self.max_idle_s = max_idle_ms / 1000
        self._clock = clock
        self._lanes: dict[Hashable, _Lane] = {}
        self._tasks: dict[int, list[Hashable]] = {}  # partition -> its lanes' tps
        self._blocked_since: dict[int, float] = {}
        self.holes: int = 0  # jumps accepted as real holes in a log
        self.held_back = False  # the last ``ready`` kept records of a task not accepted

    # --- positions ------------------------------------------------------------
    def seek(self, tp: Hashable, offset: int | None) -> int | None:
        """The consumer was moved to ``offset`` (None: unknown, take what comes).

        Returns where the caller must move the consumer back to (the aligner already
        expects it), or None. With ``require_seek``, records fetched before this seek were
        not taken, and the consumer's position may be past them: aiokafka seeks to the
        committed offset a moment before this call, and a fetch in flight from there
        still lands.
        """
        if tp.topic not in self.aligned_topics:  # type: ignore[attr-defined]
            return None
        self._sought.add(tp)
        unsought = self._unsought.pop(tp, None)
        back = None
        if unsought is not None and (offset is None or unsought[1] >= offset):
            back = unsought[0] if offset is None else offset
        self._seek(tp, offset if back is None else back)
        return back

    def _seek(self, tp: Hashable, offset: int | None) -> None:
        lane = self._lane(tp)
        if (
            offset is not None
            and lane.next_offset is not None
            and lane.fetch_offset is not None
            and lane.next_offset <= offset <= lane.fetch_offset
        ):
            while lane.records and lane.records[-1].offset >= offset:  # a seek forward of
                lane.records.pop()  # what was buffered: keep the part before it
            lane.fetch_offset = offset
            return
        lane.records.clear()
        lane.next_offset = lane.fetch_offset = lane.floor = offset
        lane.sought_at = self._clock()
        lane.reseeks = 0
        lane.known_end = None

    def ends_at(self, tp: Hashable, end: int) -> None:
        """``tp``'s log reaches ``end`` (its end offset, listed after a seek): until a fetch
        gets there, its records are known to exist and the task waits for them."""
        lane = self._lanes.get(tp)
        if lane is not None:
            lane.known_end = max(end, lane.known_end or 0)

    def forget(self, tps: Iterator[Hashable] | list[Hashable] | set[Hashable]) -> None:
        """Partitions revoked: what was buffered for them is fetched again by their next owner."""
        for tp in tps:
            self._sought.discard(tp)
            self._unsought.pop(tp, None)
            self._blocked_since.pop(tp.partition, None)  # type: ignore[attr-defined]
            if self._lanes.pop(tp, None) is not None:
                task = self._tasks.get(tp.partition)  # type: ignore[attr-defined]
                if task is not None and tp in task:
                    task.remove(tp)

    def floor(self, tp: Hashable) -> int | None:
        """Where the last seek put ``tp`` (its committed offset): no record before it is due."""
        lane = self._lanes.get(tp)
        return lane.floor if lane is not None else None

    def settled(self, tp: Hashable, after_s: float) -> bool:
        """More than ``after_s`` since the last seek back: what was fetched since has arrived.

        Until then a partition's high watermark cannot say it is caught up: on the dev
        broker it is the last batch's base offset + 1, below records a fetch already
        brought but the drain loop has not taken yet.
        """
        lane = self._lanes.get(tp)
        return lane is None or self._clock() - lane.sought_at > after_s

    def fetched(self, tp: Hashable) -> int | None:
        """The offset after the last record fetched for ``tp`` (handed on or buffered)."""
        lane = self._lanes.get(tp)
        return lane.fetch_offset if lane is not None else None

    def buffered(self, tp: Hashable) -> int:
        lane = self._lanes.get(tp)
        return len(lane.records) if lane is not None else 0

    # --- in ---------------------------------------------------------------------
    def add(self, tp: Hashable, records: list[Any]) -> Jump | None:
        """Buffer a fetch's records of ``tp`` (in offset order); a jump stops at the gap."""
        if self.require_seek and tp not in self._sought:
            if records:  # fetched before the seek that follows an assignment: read again
                low, high = self._unsought.get(tp, (records[0].offset, records[-1].offset))
                self._unsought[tp] = (min(low, records[0].offset), max(high, records[-1].offset))
            return None
        lane = self._lane(tp)
        for i, record in enumerate(records):
            offset = record.offset
            expected = lane.fetch_offset
            if expected is not None and offset < expected:
                continue  # fetched before a seek back, already buffered or handed on
            if expected is not None and offset > expected:
                if (i == 0 or records[i - 1].offset < expected) and lane.seek_back(offset + 1):
                    return Jump(tp, expected, offset)
                self.holes += 1  # the same jump again and again: a real hole in the log
            lane.reseeks = 0
            if lane.next_offset is None:
                lane.next_offset = offset
            lane.records.append(record)
            lane.fetch_offset = offset + 1
        return None

    def sought(self) -> list[Hashable]:
        """The partitions sought in this assignment (whose positions :meth:`check` can judge)."""
        return [tp for tp in self._lanes if not self.require_seek or tp in self._sought]

    def check(self, tp: Hashable, position: int | None) -> int | None:
        """Compare the consumer's position for ``tp`` with what reached :meth:`add`.

        Call it when no fetched record is on its way (between two fetches). A position
        past the next offset expected from a fetch means records were handed out by the
        consumer and lost on the way: Faust's ``getmany`` drops the rest of a batch when
        the flow stops or the generation changes, and a rebalance cancels a delivery.
        Nothing would fetch them again unless later records showed the jump. Returns the
        offset to seek back to, or None. As with jumps, only the same gap ``MAX_RESEEKS``
        times in a row is taken as a hole in the log (a transaction marker, compaction).
        """
        lane = self._lanes.get(tp)
        if lane is None or position is None or lane.fetch_offset is None:
            return None
        if self.require_seek and tp not in self._sought:
            return None
        if position <= lane.fetch_offset:
            return None
        if lane.seek_back(position):
            return lane.fetch_offset
        self.holes += 1
        lane.reseeks = 0
        if not lane.records:
            lane.next_offset = position
        lane.fetch_offset = position
        return None

    # --- out --------------------------------------------------------------------
    def ready(
        self,
        highwater: Callable[[Any], int | None],
        accepting: Callable[[int], bool] | None = None,
    ) -> Iterator[Any]:
        """Yield what can be handed on now: per task, lowest timestamp first.

        Tasks whose partition the caller is not ``accepting`` yet keep their records
        (``held_back`` says so). The caller calls :meth:`delivered` once it has handed a
        record on; one it was interrupted handing on stays at the head of its buffer, and
        comes again.
        """
        self.held_back = False
        for partition, task in list(self._tasks.items()):
            if not task:
                continue
            if accepting is not None and not accepting(partition):
                self.held_back = self.held_back or any(self._lanes[tp].records for tp in task)
                continue
            yield from self._ready_task(partition, task, highwater)

    def _ready_task(
        self, partition: int, task: list[Hashable], highwater: Callable[[Any], int | None]
    ) -> Iterator[Any]:
        lanes = self._lanes
        lagging: dict[Hashable, bool] = {}  # empty lanes with more on the broker, asked once
        while True:
            busy = [lanes[tp] for tp in task if lanes[tp].records]
            if not busy:
                self._blocked_since.pop(partition, None)
                return
            waiting = False
            for tp in task:
                lane = lanes[tp]
                if not lane.records:
                    more = lagging.get(tp)
                    if more is None:
                        more = lagging[tp] = self._has_more(tp, lane, highwater)
                    waiting = waiting or more
            if waiting:
                since = self._blocked_since.setdefault(partition, self._clock())
                if self._clock() - since < self.max_idle_s:
                    return  # wait for the lagging partition's records to arrive
            else:
                self._blocked_since.pop(partition, None)
            if len(busy) == 1:  # the usual case live: hand on the one lane's run in order
                lane = busy[0]
                while lane.records:
                    record = lane.records[0]
                    yield record
                    if lane.records and lane.records[0] is record:
                        return  # not handed on (the caller stopped): it stays at the head
                continue
            busy.sort(key=_head_timestamp)
            head, until = busy[0], _head_timestamp(busy[1])
            while head.records and (head.records[0].timestamp or 0.0) <= until:
                record = head.records[0]  # its run up to the next lane's head, in one go
                yield record
                if head.records and head.records[0] is record:
                    return

    def delivered(self, record: Any) -> None:
        lane = self._lanes[record.tp]
        if lane.records and lane.records[0] is record:
            lane.records.popleft()
            lane.next_offset = record.offset + 1

    @staticmethod
    def _has_more(tp: Hashable, lane: _Lane, highwater: Callable[[Any], int | None]) -> bool:
        if lane.fetch_offset is None:
            return False
        hw = highwater(tp)
        if hw == UNKNOWN:
            return True
        end = max(-1 if hw is None else hw, -1 if lane.known_end is None else lane.known_end)
        return lane.fetch_offset < end

    def waiting(self) -> bool:
        """Whether some task holds records back, waiting for a lagging partition."""
        return bool(self._blocked_since)

    def _lane(self, tp: Hashable) -> _Lane:
        lane = self._lanes.get(tp)
        if lane is None:
            lane = self._lanes[tp] = _Lane()
            self._tasks.setdefault(tp.partition, []).append(tp)  # type: ignore[attr-defined]
        return lane


def _head_timestamp(lane: _Lane) -> float:
    return lane.records[0].timestamp or 0.0
