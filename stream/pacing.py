"""Background work in slices that leave the worker to its events.

A burst of 20,000 due deadlines, or the checkpoint of the 20,000 customers they
changed, is 1-2 s of CPU on this event loop. One turn of the loop between two
slices (``sleep(0)``) is not enough room for an event: a fetched record needs the
consumer's thread to get the GIL and a few turns of the loop to reach the
runtime, and every turn runs every other slice that is ready. So background work
runs for at most ``budget_s``, then sleeps ``pause_s`` (measured: a burst during
2,000 events/s, bench/FINDINGS.md). One ``Pacer`` per worker is shared by all of
it, so the timers and the checkpoint together keep to one budget.
"""

from __future__ import annotations

import asyncio
import time

BUDGET_S = 0.010
PAUSE_S = 0.005


class Pacer:
    __slots__ = ("_pause_at", "budget_s", "pause_s")

    def __init__(self, budget_s: float = BUDGET_S, pause_s: float = PAUSE_S) -> None:
        self.budget_s = budget_s
        self.pause_s = pause_s
        self._pause_at = 0.0  # when background work steps aside next

    async def step(self) -> None:
        """Between two slices: a turn of the loop, or a pause once the budget is spent."""
        if time.perf_counter() < self._pause_at:
            await asyncio.sleep(0)
            return
        await asyncio.sleep(self.pause_s)
        self._pause_at = time.perf_counter() + self.budget_s
