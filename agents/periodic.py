"""Work that runs forever at an interval, for the worker's and the dispatcher's apps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def every(interval: float, work: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run ``work`` forever, ``interval`` apart (a Faust timer warns when work outlasts it).

    A failure (the broker unreachable) is logged and tried again at the next round:
    what was not persisted stays buffered or dirty (agents/checkpoint.py).
    """
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except Exception as exc:
            log.warning("%s failed, retrying: %s", what, exc)
