"""The dispatcher's own gauges: how far it is behind on ``actions``, and its Redis queue.

Call :func:`update_dispatcher_gauges` from a timer of the dispatcher's Faust app
(``agents/dispatcher.py``), every couple of seconds::

    @app.timer(2.0, name="report_dispatcher_gauges")
    async def report_dispatcher_gauges() -> None:
        await update_dispatcher_gauges(app, redis)

Lag is ``kairos_consumer_lag_messages{topic="actions"}`` (the same series the workers
report for their inputs, so the lag alert and dashboard cover the dispatcher too);
the queue is ``kairos_dispatch_queue{state="due"|"scheduled"}``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from monitoring.lag import update_consumer_lag
from monitoring.metrics import DISPATCH_QUEUE

log = logging.getLogger(__name__)

ACTIONS_TOPIC = "actions"
DUE_KEY = "kairos:dispatch:due"  # channels.schedule.DUE_KEY: member action_id, score due ms


async def update_dispatcher_gauges(app: Any, redis: Any) -> None:
    """Set the lag on ``actions`` and the queue sizes; a failure is logged, never raised."""
    await update_consumer_lag(app, [ACTIONS_TOPIC])
    await update_dispatch_queue(redis)


async def update_dispatch_queue(redis: Any, now_ms: int | None = None) -> tuple[int, int]:
    """``kairos_dispatch_queue``: entries due by ``now_ms`` and those scheduled later."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    try:
        due = int(await redis.zcount(DUE_KEY, "-inf", now))
        scheduled = int(await redis.zcount(DUE_KEY, f"({now}", "+inf"))
    except Exception as exc:  # Redis down: the Redis alert says so; keep the last values
        log.warning("dispatch queue size unavailable: %s", exc)
        return -1, -1
    DISPATCH_QUEUE.labels("due").set(due)
    DISPATCH_QUEUE.labels("scheduled").set(scheduled)
    return due, scheduled
