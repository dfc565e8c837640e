"""The worker's durability steps, in order, in one place.

Kafka gives this broker no transactions, so nothing makes "outputs, state and input
offsets" one atomic write. Instead each step only ever persists what the steps
before it have made safe, and every crash between two steps leaves the worker able
to redo the rest with the same result (deterministic ``action_id``s; the dispatcher
skips an id it has seen):

0. **Offsets are chosen first** (by the caller: ``stream/app.py`` takes the offsets
   it will commit before calling :meth:`Checkpoint.run`). They cover only records
   the agent had finished with, so everything they cover is in the cut below.
1. **Cut.** With no ``await`` in between, take every output record buffered so far
   and fix the customers changed since the last checkpoint. Their states are
   encoded as they were at this instant (copy on write: ``state/store.py``), so
   they reflect exactly the events and timers whose outputs are in the cut or were
   shipped before it.
2. **Outputs** (actions, stage changes, conversions, dead letters, identity
   requests) are sent and acknowledged by the broker.
3. **State**: the cut's customer states go to the changelog and are acknowledged.
4. **Offsets** are committed by the caller, after this returns.

A crash before 2 completes: neither the states nor the offsets moved; the events are
read again and decided again. Between 2 and 3: some outputs are out, the states are
older; re-reading decides the same actions again, with the same ids. Between 3 and
4: the states are ahead of the offsets; the re-read events are recognised by their
``event_id`` (the customer's dedupe memory is in the state) and skipped, and their
outputs were acknowledged in 2. A failed step raises: the later steps do not run,
the cut's states stay dirty and its outputs are queued again (``stream/output.py``).
"""

from __future__ import annotations

import asyncio

from monitoring import metrics
from state.store import CustomerStore, StateSnapshot
from stream.output import Output
from stream.pacing import Pacer


class Checkpoint:
    def __init__(self, output: Output, store: CustomerStore) -> None:
        self._output = output
        self._store = store
        # One checkpoint at a time: a later one must not persist states before an
        # earlier one's outputs are acknowledged.
        self._lock = asyncio.Lock()

    async def run(self, pacer: Pacer | None = None) -> int:
        """Steps 1-3; returns how many customer states were written."""
        async with self._lock:
            cut: list[StateSnapshot] = []
            try:
                await self._output.flush(at_cut=lambda: cut.append(self._store.snapshot()))
            except BaseException:
                if cut:
                    self._store.mark_dirty(cut[0])  # its outputs are not safe: not yet
                metrics.STATE_ERRORS.labels("outputs").inc()
                raise
            snapshot = cut[0]
            try:
                await self._store.encode(snapshot, pacer=pacer)
            except BaseException:
                self._store.mark_dirty(snapshot)
                raise
            return await self._store.write(snapshot)
