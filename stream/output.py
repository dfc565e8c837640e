"""Writes to output topics and the state changelog through batching aiokafka producers.

Faust's per-message send path costs ~250-300 us a record here and aiokafka's
``send()`` still ~15 us; appending to batches and sending one batch per
partition reaches 150,000+ records/s. The hot path only calls :meth:`Output.add`
(no await: outputs go to the customer's own partition number, co-partitioned
like the inputs; :func:`partition_for` places a record by key the way Kafka's
default partitioner does); :meth:`Output.drain` ships the buffers every few
milliseconds.

:meth:`Output.flush` is the durability step: it returns once every record added
or sent before it was called is acknowledged by the broker. Its ``at_cut``
callback runs at the instant that set of records is fixed, with no ``await`` in
between, so whatever it captures (the worker encodes customer states there) is
covered by exactly those records. A batch the broker did not acknowledge raises
:class:`OutputError`; with ``requeue_failed`` its records go back to the front of
their buffers and the next flush sends them again (at-least-once: a timed-out
batch may have been written, so readers de-duplicate on the records' ids).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

T = TypeVar("T")
Record = tuple[bytes | None, bytes | None]
Lane = int
FAST: Lane = 0  # decisions on fresh events: a customer or an agent is waiting
BULK: Lane = 1  # what a burst of due deadlines decides: must not stand in front of FAST


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, as Java's)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class OutputError(Exception):
    """Records the broker did not acknowledge: nothing that depends on them may be persisted."""


class _NotHandedOver(Exception):
    """The producer refused a send; the first ``handed_over`` records had been taken."""

    def __init__(self, handed_over: int, error: Exception) -> None:
        super().__init__(handed_over, error)
        self.handed_over = handed_over
        self.error = error


@dataclass(slots=True)
class _Shipped:
    future: asyncio.Future[Any]
    topic: str
    partition: int | None
    records: list[Record]
    lane: Lane


class Output:
    def __init__(
        self,
        bootstrap: str,
        client_id: str = "kairos",
        *,
        requeue_failed: bool = True,
        lanes: int = 1,
        request_timeout_ms: int = 120_000,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._requeue_failed = requeue_failed
        self._request_timeout_ms = request_timeout_ms
        self._client_kwargs = client_kwargs or {}
        # One producer a lane: aiokafka sends one batch per partition at a time, so a lane
        # of its own keeps FAST records from queuing behind a BULK burst's batches.
        self._lanes = lanes
        self._producers: list[AIOKafkaProducer] = []  # made in start()
        self._unacked: list[_Shipped] = []
        self._buffers: dict[tuple[str, int | None, Lane], list[Record]] = {}
        # One shipper at a time: a partition's records leave in the order they were added.
        self._lock = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        """Start the producer (inside the running loop: aiokafka binds to it)."""
        if not self._started:
            self._started = True
            for lane in range(self._lanes):
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id if lane == FAST else f"{self._client_id}-bulk",
                    linger_ms=2,
                    max_batch_size=1_048_576,
                    max_request_size=4_194_304,
                    # A broker outage shorter than this is ridden out by aiokafka's retries.
                    request_timeout_ms=self._request_timeout_ms,
                    **self._client_kwargs,
                )
                await producer.start()
                self._producers.append(producer)

    async def stop(self) -> None:
        if self._started:
            try:
                await self.flush()
            finally:
                for producer in self._producers:
                    await producer.stop()

    def add(
        self,
        topic: str,
        partition: int | None,
        key: str | None,
        value: dict[str, Any],
        lane: Lane = FAST,
    ) -> None:
        """Buffer one record for ``topic``'s ``partition`` (None: by key); :meth:`drain` sends it."""
        if lane >= self._lanes:
            lane = FAST
        buffer = self._buffers.get((topic, partition, lane))
        if buffer is None:
            buffer = self._buffers[(topic, partition, lane)] = []
        buffer.append((key.encode() if key is not None else None, orjson.dumps(value)))

    async def send(
        self, topic: str, key: str | None, value: dict, partition: int | None = None
    ) -> None:
        """Send one record now (still acknowledged only by :meth:`flush`)."""
        self.add(topic, partition, key, value)
        await self.drain()

    async def drain(self) -> int:
        """Send every buffered record as one batch per partition; returns how many."""
        if not self._buffers:
            return 0
        async with self._lock:
            return await self._ship(self._take())

    async def flush(self, at_cut: Callable[[], T] | None = None) -> T | None:
        """Wait until every record added or sent so far is acknowledged; see the module doc."""
        async with self._lock:
            buffers = self._take()
            cut = at_cut() if at_cut is not None else None  # no await since _take
            await self._ship(buffers)
            unacked, self._unacked = self._unacked, []
        await self._await_acks(unacked)
        return cut

    def _take(self) -> dict[tuple[str, int | None, Lane], list[Record]]:
        buffers, self._buffers = self._buffers, {}
        return buffers

    async def _ship(self, buffers: dict[tuple[str, int | None, Lane], list[Record]]) -> int:
        """Hand every buffer to its producer. If the producer refuses one (no metadata
        while the broker is out of reach), what was not handed over goes back to the front
        of its buffer, ahead of anything added meanwhile, and the error is raised."""
        sent = 0
        items = sorted(buffers.items(), key=_lane_of)
        for i, ((topic, partition, lane), records) in enumerate(items):
            try:
                if partition is None:
                    await self._send_keyed(topic, records, lane)
                else:
                    await self._send_batch(topic, partition, records, lane=lane)
            except Exception as exc:  # _NotHandedOver, or the producer did not start
                stop = exc if isinstance(exc, _NotHandedOver) else _NotHandedOver(0, exc)
                if self._requeue_failed:
                    unsent = records[stop.handed_over :]
                    for where, rest in reversed(
                        [((topic, partition, lane), unsent), *items[i + 1 :]]
                    ):
                        buffer = self._buffers.setdefault(where, [])
                        buffer[:0] = rest
                raise OutputError(f"records to {topic!r} not sent: {stop.error!r}") from stop.error
            sent += len(records)
        return sent

    async def _send_keyed(self, topic: str, records: list[Record], lane: Lane) -> None:
        if not self._started:
            await self.start()
        for i, (key, value) in enumerate(records):
            try:
                future = await self._producers[lane].send(topic, value, key=key)
            except Exception as exc:
                raise _NotHandedOver(i, exc) from exc
            self._unacked.append(_Shipped(future, topic, None, [(key, value)], lane))

    async def send_batch(
        self, topic: str, partition: int, records: Iterable[Record], exact_end: bool = False
    ) -> asyncio.Future[Any] | None:
        """Append ``(key, value)`` records to as few batches as fit, acknowledged by :meth:`flush`.

        Returns the future of the last record's batch (its ``offset`` is the last
        record's), or None when there was nothing to send. ``exact_end`` puts the last
        record in a batch of its own: the Tansu dev broker reports a partition's end
        offset as the last batch's base offset + 1, so a multi-record last batch would
        hide records from anyone reading "up to the end", Faust's table recovery above
        all. It costs a sender round trip (aiokafka queues one batch per partition at a
        time), so only the changelog asks for it.
        """
        async with self._lock:
            return await self._send_batch(topic, partition, list(records), exact_end)

    async def _send_batch(
        self,
        topic: str,
        partition: int,
        records: list[Record],
        exact_end: bool = False,
        lane: Lane = FAST,
    ) -> asyncio.Future[Any] | None:
        if not self._started:
            await self.start()
        if not records:
            return None
        producer = self._producers[lane]
        last = records[-1:] if exact_end else []
        body = records[:-1] if exact_end else records
        future = None
        handed_over = 0  # records[:handed_over] are with the producer
        try:
            batch, in_batch = producer.create_batch(), list[Record]()
            for key, value in body:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    await self._send_one(batch, topic, partition, in_batch, lane)
                    handed_over += len(in_batch)
                    batch, in_batch = producer.create_batch(), []
                    batch.append(key=key, value=value, timestamp=None)
                in_batch.append((key, value))
            if in_batch:
                future = await self._send_one(batch, topic, partition, in_batch, lane)
                handed_over += len(in_batch)
            if last:
                batch = producer.create_batch()
                batch.append(key=last[0][0], value=last[0][1], timestamp=None)
                future = await self._send_one(batch, topic, partition, last, lane)
        except Exception as exc:
            raise _NotHandedOver(handed_over, exc) from exc
        return future

    async def _send_one(
        self, batch: Any, topic: str, partition: int, records: list[Record], lane: Lane
    ) -> asyncio.Future[Any]:
        future = await self._producers[lane].send_batch(batch, topic, partition=partition)
        self._unacked.append(_Shipped(future, topic, partition, records, lane))
        return future

    async def _await_acks(self, shipped: list[_Shipped]) -> None:
        if not shipped:
            return
        results = await asyncio.gather(*(s.future for s in shipped), return_exceptions=True)
        failed = [s for s, r in zip(shipped, results, strict=True) if isinstance(r, BaseException)]
        if not failed:
            return
        if self._requeue_failed:
            for s in reversed(failed):  # back to the front, in their original order
                buffer = self._buffers.setdefault((s.topic, s.partition, s.lane), [])
                buffer[:0] = s.records
        error = next(r for r in results if isinstance(r, BaseException))
        raise OutputError(
            f"{sum(len(s.records) for s in failed)} record(s) to "
            f"{sorted({s.topic for s in failed})} not acknowledged by the broker: {error!r}"
        ) from error


def _lane_of(item: tuple[tuple[str, int | None, Lane], list[Record]]) -> Lane:
    return item[0][2]
