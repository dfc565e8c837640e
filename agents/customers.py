"""The Faust wiring: one agent over the co-partitioned input topics, plus periodic tasks.

The agent only hands each record to ``Runtime.on_message``; timers and state
flushes run on Faust timers of the same worker, so they share the event loop
(and need no locks around customer state).
"""

from __future__ import annotations

from typing import Any

from agents.runtime import Runtime
from stream import topics
from stream.app import KairosApp, raw_topics


def declare_table(app: KairosApp) -> Any:
    """The customer-state table: raw bytes keyed by customer_id, changelog-backed."""
    return app.Table(
        topics.STATE_TABLE,
        partitions=app.kairos_settings.partitions,
        key_type=bytes,
        value_type=bytes,
    )


def install(app: KairosApp, runtime: Runtime, table: Any) -> None:
    """Declare the agent and the periodic tasks on ``app``."""
    settings = app.kairos_settings
    app.kairos_runtime = runtime
    source = raw_topics(app, *topics.INPUTS, topics.PROFILES, topics.IDENTITY)

    @app.agent(source, name="customers")
    async def customers(stream: Any) -> None:
        on_message = runtime.on_message
        async for event in stream.events():
            msg = event.message
            await on_message(msg.topic, msg.partition, msg.offset, msg.key, msg.value)

    @app.timer(settings.timer_tick, name="fire_timers")
    async def fire_timers() -> None:
        if runtime.recovered:
            await runtime.fire_due()

    @app.timer(settings.output_interval, name="send_outputs")
    async def send_outputs() -> None:
        await runtime.output.drain()

    @app.timer(settings.flush_interval, name="flush_state")
    async def flush_state() -> None:
        await runtime.flush()
        runtime.update_stage_gauge()

    @table.on_recover
    async def on_recovered() -> None:
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic in topics.INPUTS}
        runtime.rebuild(assigned)

    @app.on_before_shutdown.connect
    async def flush_before_shutdown(sender: Any, **kwargs: Any) -> None:
        await runtime.flush()  # a clean stop leaves nothing for the next worker to redo

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await runtime.flush()  # a revoked partition's state must reach its changelog first
        runtime.revoked({tp.partition for tp in revoked if tp.topic in topics.INPUTS})
