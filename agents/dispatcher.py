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

import logging
from typing import Any

import orjson

from channels.contacts import ContactBook
from channels.dispatch import Dispatcher
from state.live_config import ConfigWatcher
from stream import topics
from stream.app import KairosApp
from stream.events import Rejection, decode_event, decode_profile

log = logging.getLogger("kairos.dispatcher")

SHUTDOWN_DRAIN_S = 10.0


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
            await dispatcher.accept(action)
    elif topic == topics.PROFILES:
        parsed = decode_profile(value, key)
        if not isinstance(parsed, Rejection):
            await contacts.on_profile(*parsed)
    elif value and b"subscribe" in value:  # engagement: only (un)subscribes matter here
        ev = decode_event(value, topic, key)
        if not isinstance(ev, Rejection):
            await contacts.on_engagement(ev)


def install(
    app: KairosApp, dispatcher: Dispatcher, contacts: ContactBook, watcher: ConfigWatcher
) -> None:
    settings = app.kairos_settings
    app.kairos_runtime = dispatcher.output  # the transport flushes it before committing
    source = app.topic(
        topics.ACTIONS,
        topics.PROFILES,
        topics.ENGAGEMENT,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    @app.agent(source, name="dispatcher")
    async def dispatch(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            await on_record(dispatcher, contacts, msg.topic, msg.key, msg.value)

    @app.timer(dispatcher.settings.tick_s, name="deliver_due")
    async def deliver_due() -> None:
        await dispatcher.tick()

    @app.task
    async def follow_config() -> None:
        await watcher.run()

    @app.on_before_shutdown.connect
    async def drain(sender: Any, **kwargs: Any) -> None:
        await dispatcher.drain(SHUTDOWN_DRAIN_S)
        await dispatcher.output.flush()
        await dispatcher.close()
