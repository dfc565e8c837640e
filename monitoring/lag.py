"""``kairos_consumer_lag_messages``: high watermark minus committed offset, per partition.

Faust knows both numbers; nothing exports them. Call :func:`update_consumer_lag` from
a Faust timer in each process that consumes (the worker; the dispatcher too if its
lag should show)::

    from monitoring.lag import update_consumer_lag

    @app.timer(interval=5.0)
    async def report_consumer_lag() -> None:
        await update_consumer_lag(app)

It reads the partitions assigned to this process only (each worker reports its own;
the dashboard and alert take ``max by (topic, partition)`` over workers), skips Faust's
internal topics (table changelogs, the assignor's leader topic), and removes the
series of partitions this process no longer owns, so a revoked partition does not
keep a stale value.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from monitoring.metrics import CONSUMER_LAG
from stream.app import committed_offsets

log = logging.getLogger(__name__)

# Faust's own topics: table changelogs (recovery, not consumption) and the
# partition assignor's leader topic.
_INTERNAL = ("-changelog", "-__assignor-__leader")
_reported: set[tuple[str, str]] = set()  # label values this process has set


async def update_consumer_lag(
    consumer_or_app: Any, topics: Iterable[str] | None = None, gauge: Any = CONSUMER_LAG
) -> dict[tuple[str, int], int]:
    """Set the lag gauge for every assigned partition; return ``{(topic, partition): lag}``.

    ``consumer_or_app``: a Faust app (its ``.consumer`` is used) or a Faust consumer.
    ``topics``: report only these topics (default: every assigned topic except Faust's
    own ``*-changelog`` and ``*-__assignor-__leader``). Committed is the group's
    committed offset (the next offset to process); a partition with no commit yet
    counts from its earliest offset.
    """
    consumer = getattr(consumer_or_app, "consumer", consumer_or_app)
    wanted = set(topics) if topics is not None else None
    try:
        assigned = consumer.assignment()
    except Exception:  # not started, or between rebalances: nothing to report now
        return {}
    tps = [
        tp
        for tp in assigned
        if (tp.topic in wanted if wanted is not None else not tp.topic.endswith(_INTERNAL))
    ]
    lags: dict[tuple[str, int], int] = {}
    if tps:
        try:
            highwaters: Mapping[Any, int] = await consumer.highwaters(*tps)
            known = committed_offsets(consumer)
            committed = {tp: known.get(tp) for tp in tps}
            uncommitted = [tp for tp, offset in committed.items() if offset is None]
            if uncommitted:
                committed.update(await consumer.earliest_offsets(*uncommitted))
        except Exception as exc:  # a metric must never break the consumer
            log.warning("consumer lag unavailable: %s", exc)
            return {}
        for tp in tps:
            end, done = highwaters.get(tp), committed.get(tp)
            if end is None or done is None:
                continue
            lags[tp.topic, tp.partition] = max(0, int(end) - int(done))
    current = {(topic, str(partition)) for topic, partition in lags}
    for labels in _reported - current:
        with contextlib.suppress(KeyError):  # already removed
            gauge.remove(*labels)
    for (topic, partition), lag in lags.items():
        gauge.labels(topic, str(partition)).set(lag)
    _reported.clear()
    _reported.update(current)
    return lags
