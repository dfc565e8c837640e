"""The Faust wiring: the co-partitioned input topics, the runtime, and periodic tasks.

The consumer hands each input record to ``Runtime.handle`` (stream/app.py, in
event-time order per partition); timers and checkpoints run as tasks of the same
worker, so they share the event loop (and need no locks around customer state).
"""

from __future__ import annotations

import logging
from typing import Any

from agents.periodic import every
from agents.runtime import Runtime
from stream import topics
from stream.app import KairosApp, input_positions, raw_topics

log = logging.getLogger(__name__)

# RocksDB keeps unflushed writes in memtables backed by its write-ahead log, and a
# restart after kill -9 replays that log before the partition opens. With Faust's
# 64 MiB buffers, a million customers' states were still all in the log: opening the
# partitions took 1.7-3.4 s. 16 MiB (Kafka Streams' default) flushes to sorted files
# as it goes: 0.7-1.0 s (bench/FINDINGS.md, seventh round), a quarter of the memory.
ROCKSDB_OPTIONS = {"write_buffer_size": 16 * 1024 * 1024}


def declare_table(app: KairosApp) -> Any:
    """The customer-state table: raw bytes keyed by customer_id, changelog-backed."""
    return app.Table(
        topics.STATE_TABLE,
        partitions=app.kairos_settings.partitions,
        key_type=bytes,
        value_type=bytes,
        options=dict(ROCKSDB_OPTIONS),  # a copy: Faust's RocksDB store pops from it
    )


def install(app: KairosApp, runtime: Runtime, table: Any) -> None:
    """Declare the agent and the periodic tasks on ``app``."""
    settings = app.kairos_settings
    app.kairos_before_commit = runtime.flush
    names = (*topics.INPUTS, topics.PROFILES, topics.IDENTITY)
    app.kairos_aligned_topics = frozenset(names)
    source = raw_topics(app, *names)
    runtime.input_positions = lambda partition: input_positions(app, partition)

    # Records reach the runtime from the consumer's drain loop (stream/app.py), a
    # partition batch at a time; Faust still subscribes, rebalances and commits.
    app.topics.add(source)
    app.kairos_handler = runtime.handle
    app.kairos_accepting = runtime.accepts  # partitions whose state is restored

    @app.timer(settings.timer_tick, name="fire_timers")
    async def fire_timers() -> None:
        if runtime.recovered:
            await runtime.fire_due()

    @app.task
    async def send_outputs() -> None:
        await every(settings.output_interval, runtime.output.drain, "sending outputs")

    async def checkpoint() -> None:
        await runtime.flush(paced=True)
        runtime.update_stage_gauge()

    @app.task
    async def flush_state() -> None:
        await every(settings.flush_interval, checkpoint, "checkpoint")

    @table.on_recover
    async def on_recovered() -> None:
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic in topics.INPUTS}
        runtime.rebuild(assigned)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust's stub: too narrow
    async def flush_before_shutdown(sender: Any, **kwargs: Any) -> None:
        await persist("shutdown")  # a clean stop leaves nothing for the next worker to redo

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust's stub: too narrow
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await persist("revocation")  # the next owner starts from the state written here
        runtime.revoked({tp.partition for tp in revoked if tp.topic in topics.INPUTS})

    async def persist(when: str) -> None:
        try:
            await runtime.flush()
        except Exception as exc:  # nothing lost: the next owner redoes it from the offsets
            log.warning("checkpoint at %s failed: %s", when, exc)
