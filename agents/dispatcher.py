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
from Redis what was not finished: the ``keep_leases`` task renews the short leases of
what this process holds, so a killed dispatcher's entries come back within about a lease
(``KAIROS_DISPATCH_LEASE``). On SIGTERM, ``Dispatcher.shutdown`` runs before the
output producer stops: sends in progress finish (``KAIROS_DISPATCH_DRAIN``), the rest is
handed back at once. Redis must persist (AOF ``appendfsync everysec`` in
production) for this to hold across a Redis restart; losing Redis loses queued and
deferred actions and the idempotency keys.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from agents.periodic import every
from channels.actions import BadAction, parse_action
from channels.contacts import ContactBook
from channels.dispatch import Dispatcher
from channels.resilience import until_redis_answers
from monitoring import metrics
from state.config_watcher import ConfigWatcher
from stream import topics
from stream.app import KairosApp, raw_topics
from stream.events import Rejection, decode_event, decode_profile

log = logging.getLogger(__name__)


async def on_record(
    dispatcher: Dispatcher,
    contacts: ContactBook,
    topic: str,
    key: bytes | None,
    value: bytes | None,
) -> None:
    """One input record; bad records are the worker's to dead-letter, here they are skipped."""
    if topic == topics.ACTIONS:
        action = parse_action(value)  # parsed once, here; typed from here on
        if isinstance(action, BadAction):
            log.warning("skipping an actions record that is not an action: %s", action.reason)
        else:
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

    async def tick() -> None:
        try:
            await dispatcher.tick()
        except (redis.RedisError, OSError) as exc:  # the next tick tries again
            metrics.REDIS_ERRORS.labels("schedule").inc()
            log.warning("redis schedule unavailable: %s", exc)

    @app.task
    async def deliver_due() -> None:  # a loop, not a Faust timer: no overlap warnings
        await every(dispatcher.settings.tick_s, tick, "delivering due actions")

    @app.task
    async def keep_leases() -> None:  # runs until Faust cancels its tasks, after the drain
        await dispatcher.keep_leases()

    @app.task
    async def follow_config() -> None:
        await watcher.run()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust's stub: too narrow
    async def drain(sender: Any, **kwargs: Any) -> None:
        await dispatcher.shutdown()
