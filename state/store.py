"""Customer state: decoded in memory while hot, persisted through the Faust table's changelog.

Writing a Faust table per event costs ~250-300 us (one changelog record through
Faust's producer each time). Here the core updates decoded states in place,
marks them dirty, and a checkpoint (``agents/checkpoint.py``) encodes each dirty
customer once (``snapshot``) and writes the encoded states as batched changelog
records (``write``), also updating the table's local store.
The changelog stays the recovery source: Faust restores the table from it on
assignment, exactly as if Faust had written it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.engine import new_state
from core.model import CustomerState
from monitoring import metrics
from state import codec
from state.local_store import local_store
from stream.output import Output


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """Customers changed since the last snapshot, and their encoded states at that instant."""

    dirty: dict[int, set[str]]
    records: dict[int, list[tuple[bytes, bytes]]]


class CustomerStore:
    def __init__(self, table: Any, output: Output, changelog: str, cache_size: int) -> None:
        self._local = local_store(table)
        self._output = output
        self._changelog = changelog
        self._cache_size = cache_size
        self._cache: dict[int, dict[str, CustomerState]] = {}
        self._dirty: dict[int, set[str]] = {}
        self.stages: dict[int, Counter[str]] = {}

    def get(self, customer_id: str, partition: int) -> CustomerState:
        cache = self._cache.get(partition)
        if cache is None:
            cache = self._cache[partition] = {}
        state = cache.get(customer_id)
        if state is None:
            raw = self._local.get(partition, customer_id.encode())
            if raw:
                state = codec.decode(raw)
            else:
                state = new_state(customer_id)
                self.stages.setdefault(partition, Counter())["new"] += 1
            cache[customer_id] = state
        return state

    def peek(self, customer_id: str, partition: int) -> CustomerState | None:
        """The customer's state if there is one (``get`` would create it)."""
        cache = self._cache.get(partition)
        state = cache.get(customer_id) if cache is not None else None
        if state is None and self._local.get(partition, customer_id.encode()):
            state = self.get(customer_id, partition)
        return state

    def touch(self, partition: int, customer_id: str) -> None:
        dirty = self._dirty.get(partition)
        if dirty is None:
            dirty = self._dirty[partition] = set()
        dirty.add(customer_id)

    def stage_moved(self, partition: int, from_stage: str, to_stage: str) -> None:
        counts = self.stages.setdefault(partition, Counter())
        counts[from_stage] -= 1
        counts[to_stage] += 1

    def snapshot(self) -> StateSnapshot:
        """Encode every customer changed since the last snapshot (no await: see ``checkpoint``)."""
        dirty, self._dirty = self._dirty, {}
        encode = codec.encode
        records: dict[int, list[tuple[bytes, bytes]]] = {}
        for partition, ids in dirty.items():
            cache = self._cache.get(partition, {})
            records[partition] = [
                (customer_id.encode(), encode(cache[customer_id]))
                for customer_id in ids
                if customer_id in cache
            ]
        return StateSnapshot(dirty, records)

    def mark_dirty(self, snapshot: StateSnapshot) -> None:
        """A snapshot that was not written: its customers go into the next one."""
        for partition, ids in snapshot.dirty.items():
            if partition in self._cache:  # not revoked meanwhile
                self._dirty.setdefault(partition, set()).update(ids)

    async def write(self, snapshot: StateSnapshot) -> int:
        """Write a snapshot to the changelog and wait for the broker; returns how many states.

        On failure its customers are marked dirty again: the next snapshot encodes their
        current state (never an older one after a newer one).
        """
        try:
            written = await self._write(snapshot.records)
        except BaseException:
            self.mark_dirty(snapshot)
            metrics.STATE_ERRORS.labels("flush").inc()
            raise
        metrics.STATE_FLUSHES.inc(written)
        self._evict()
        return written

    async def _write(self, records: dict[int, list[tuple[bytes, bytes]]]) -> int:
        put, written, last = self._local.put, 0, {}
        for partition, batch in records.items():
            if not batch:
                continue
            for key, raw in batch:
                put(partition, key, raw)
            last[partition] = await self._output.send_batch(
                self._changelog, partition, batch, exact_end=True
            )
            written += len(batch)
        await self._output.flush()
        for partition, sent in last.items():  # RocksDB: a restart reads only what came after
            if sent is not None:
                self._local.persisted(self._changelog, partition, sent.result().offset)
        return written

    def _evict(self) -> None:
        """Keep at most ``cache_size`` decoded states; the raw store keeps everything."""
        excess = sum(len(c) for c in self._cache.values()) - self._cache_size
        for partition, cache in self._cache.items():
            if excess <= 0:
                return
            dirty = self._dirty.get(partition, set())
            for customer_id in [c for c in list(cache)[:excess] if c not in dirty]:
                del cache[customer_id]
                excess -= 1

    def drop(self, partition: int) -> None:
        """Forget a revoked partition (after its dirty state was flushed)."""
        self._cache.pop(partition, None)
        self._dirty.pop(partition, None)
        self.stages.pop(partition, None)

    def recovered(self, partitions: set[int]) -> Iterator[tuple[int, CustomerState]]:
        """Decode every stored customer of ``partitions`` (after Faust's recovery)."""
        for partition, _, raw in self._local.items(partitions):
            yield partition, codec.decode(raw)
