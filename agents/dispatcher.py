"""The dispatcher's Faust wiring: one agent hands records to ``Dispatcher``, timers deliver.

The agent reads ``actions`` (queued in Redis by ``Dispatcher.accept``) and, for the
contact directory, ``profiles`` and ``engagement``. It awaits only Redis writes, never a
channel: deliveries run in background tasks started by the ``deliver_due`` timer, so a
slow or failing provider never stalls consumption.

Offsets and delivery: Faust acks a record when the agent has finished with it, that is
after ``accept`` wrote it to the Redis schedule; a committed offset therefore never runs
ahead of an action that is not safely queued. From there the schedule (leases), the
ledger (``channels.idempotency``) and the ``deliveries`` record take over: a crash
re-delivers from Kafka what was not committed (skipped by the ledger) and re-leases
from Redis what was not finished. Redis must persist (AOF ``appendfsync everysec`` in
production) for this to hold across a Redis restart; losing Redis loses queued and
deferred actions and the idempotency keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis

from channels.contacts import ContactBook
from channels.dispatch import Dispatcher
from monitoring import metrics
from state.live_config import ConfigWatcher
from stream import topics
from stream.app import KairosApp, raw_topics
from stream.events import Rejection, decode_event, decode_profile

log = logging.getLogger("kairos.dispatcher")

SHUTDOWN_DRAIN_S = 10.0
REDIS_RETRY_MAX_S = 5.0


async def until_redis_answers(operation: str, call: Callable[[], Awaitable[Any]]) -> Any:
    """Retry ``call`` while Redis is unreachable, counting each failure.

    The agent must not finish (and so ack) a record that is not safely in Redis, so
    consumption waits here: lag grows and the Redis-errors alert fires instead of
    actions being lost.
    """
    delay = 0.1
    while True:
        try:
            return await call()
        except (redis.RedisError, OSError) as exc:
            metrics.REDIS_ERRORS.labels(operation).inc()
            log.warning("redis %s failed (%s); retrying in %.1fs", operation, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_S)


async def on_record(
    dispatcher: Dispatcher,
    contacts: ContactBook,
    topic: str,
    key: bytes | None,
    value: bytes | None,
) -> None:
    """One input record; bad records are the worker's to dead-letter, here they are skipped."""
    if topic == topics.ACTIONS:
        try:
            action = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            return
        if isinstance(action, dict):
            await until_redis_answers("schedule", lambda: dispatcher.accept(action))
    elif topic == topics.PROFILES:
        parsed = decode_profile(value, key)
        if not isinstance(parsed, Rejection):
            await until_redis_answers("contacts", lambda: contacts.on_profile(*parsed))
    elif value and b"subscribe" in value:  # engagement: only (un)subscribes matter here
        ev = decode_event(value, topic, key)
        if not isinstance(ev, Rejection):
            await until_redis_answers("contacts", lambda: contacts.on_engagement(ev))


def install(
    app: KairosApp, dispatcher: Dispatcher, contacts: ContactBook, watcher: ConfigWatcher
) -> None:
    app.kairos_before_commit = dispatcher.output.flush  # records out before offsets move
    names = (topics.ACTIONS, topics.PROFILES, topics.ENGAGEMENT)
    app.kairos_aligned_topics = frozenset(names)
    source = raw_topics(app, *names)

    @app.agent(source, name="dispatcher")
    async def dispatch(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            await on_record(dispatcher, contacts, msg.topic, msg.key, msg.value)

    @app.timer(dispatcher.settings.tick_s, name="deliver_due")
    async def deliver_due() -> None:
        try:
            await dispatcher.tick()
        except (redis.RedisError, OSError) as exc:  # the next tick tries again
            metrics.REDIS_ERRORS.labels("schedule").inc()
            log.warning("redis schedule unavailable: %s", exc)

    @app.task
    async def follow_config() -> None:
        await watcher.run()

    @app.on_before_shutdown.connect
    async def drain(sender: Any, **kwargs: Any) -> None:
        await dispatcher.drain(SHUTDOWN_DRAIN_S)
        await dispatcher.output.flush()
        await dispatcher.close()
