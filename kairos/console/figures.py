"""Live figures per trigger, counted as ``kairos report`` counts them, kept by the minute.

:class:`Tally` folds ``actions``, ``conversions`` and ``deliveries`` records into
per-trigger, per-minute buckets. Decisions and conversions go through
``kairos.report.tally`` (each ``action_id`` once, ``core.effect.Effect`` for the groups
and the uplift with its 95% interval) and a window's summary through
``kairos.report.rows``, so the page and ``kairos report`` agree. Only counts are kept: no
customer id leaves this module.

Buckets older than :data:`KEEP` are dropped: the page shows today and the last 7 days.
:class:`Tail` reads the three topics from their beginning and follows them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from typing import Any

from core.durations import DAY, HOUR, MINUTE
from core.effect import Effect
from kairos.report import decoded, rows, tally
from stream import topics

log = logging.getLogger(__name__)

KEEP = 8 * DAY
# What the dispatcher did instead of sending (``channels.deliveries``), and delivery.
DISPATCH_SUPPRESSED = ("suppressed_frequency_cap", "suppressed_priority", "disabled")
DELIVERED = "delivered"
FAILED = "dead"
RANGES = {"1h": (HOUR, MINUTE), "24h": (DAY, HOUR), "7d": (7 * DAY, DAY)}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Tally:
    """Per (trigger, minute): an Effect, decision statuses and dispatcher outcomes."""

    def __init__(self) -> None:
        self.effects: dict[tuple[str, int], Effect] = {}
        self.statuses: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self.outcomes: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self._actions: dict[str, int] = {}  # action_id -> minute, to count each once
        self._conversions: dict[str, int] = {}
        self._outcomes: dict[tuple[str, str], int] = {}
        self.records = 0

    def add(
        self,
        actions: list[dict[str, Any]],
        conversions: list[dict[str, Any]],
        deliveries: list[dict[str, Any]],
    ) -> None:
        oldest = _minute(now_ms() - KEEP)
        by_minute: dict[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = defaultdict(
            lambda: ([], [])
        )
        for a in actions:
            minute = _minute(a.get("decided_at"))
            aid = a.get("action_id")
            if minute < oldest or not isinstance(aid, str) or aid in self._actions:
                continue
            self._actions[aid] = minute
            by_minute[minute][0].append(a)
            if a.get("trigger"):
                self.statuses[(a["trigger"], minute)][str(a.get("status"))] += 1
        for c in conversions:
            minute = _minute(c.get("at"))
            aid = c.get("action_id")
            if minute < oldest or not isinstance(aid, str) or aid in self._conversions:
                continue
            self._conversions[aid] = minute
            by_minute[minute][1].append(c)
        for minute, (acts, convs) in by_minute.items():
            for trigger, effect in tally(acts, convs).items():
                self.effects.setdefault((trigger, minute), Effect()).add(effect)
        for d in deliveries:
            outcome, name, aid = d.get("outcome"), d.get("trigger"), d.get("action_id")
            minute = _minute(d.get("at"))
            if outcome not in (DELIVERED, FAILED, *DISPATCH_SUPPRESSED):
                continue
            if not isinstance(name, str) or not isinstance(aid, str):
                continue
            if minute < oldest or (aid, outcome) in self._outcomes:
                continue
            self._outcomes[(aid, outcome)] = minute
            self.outcomes[(name, minute)][outcome] += 1
        self.records += len(actions) + len(conversions) + len(deliveries)

    def prune(self) -> None:
        """Forget what is older than :data:`KEEP`."""
        oldest = _minute(now_ms() - KEEP)
        tables: list[dict[tuple[str, int], Any]] = [self.effects, self.statuses, self.outcomes]
        for table in tables:
            for key in [k for k in table if k[1] < oldest]:
                del table[key]
        seen: list[dict[Any, int]] = [self._actions, self._conversions, self._outcomes]
        for ids in seen:
            for key in [k for k, m in ids.items() if m < oldest]:
                del ids[key]

    def summary(self, since: int) -> dict[str, dict[str, Any]]:
        """Per trigger since ``since`` (epoch ms): ``kairos report``'s row, plus what was
        suppressed by reason (the core's statuses and the dispatcher's), delivered, failed."""
        first = _minute(since)
        effects: dict[str, Effect] = {}
        for (trigger, minute), effect in self.effects.items():
            if minute >= first:
                effects.setdefault(trigger, Effect()).add(effect)
        out = rows(effects)
        statuses: dict[str, Counter[str]] = defaultdict(Counter)
        for (trigger, minute), counts in self.statuses.items():
            if minute >= first:
                statuses[trigger].update(counts)
        outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        for (trigger, minute), counts in self.outcomes.items():
            if minute >= first:
                outcomes[trigger].update(counts)
        for trigger in set(out) | set(outcomes):
            row = out.setdefault(trigger, rows({trigger: Effect()})[trigger])
            suppressed = {s: n for s, n in statuses[trigger].items() if s.startswith("suppressed")}
            suppressed.update(
                {s: n for s, n in outcomes[trigger].items() if s in DISPATCH_SUPPRESSED}
            )
            row["suppressed"] = dict(sorted(suppressed.items()))
            row["shadow"] = statuses[trigger].get("shadow", 0)
            row["delivered"] = outcomes[trigger].get(DELIVERED, 0)
            row["failed"] = outcomes[trigger].get(FAILED, 0)
        return out

    def series(self, span: int, step: int, now: int) -> dict[str, Any]:
        """Sends and conversions per trigger in ``step`` buckets over the last ``span``."""
        end = (now // step + 1) * step
        start = end - span
        count = span // step
        sends: dict[str, list[int]] = defaultdict(lambda: [0] * count)
        conversions: dict[str, list[int]] = defaultdict(lambda: [0] * count)
        for (trigger, minute), effect in self.effects.items():
            at = minute * MINUTE
            if start <= at < end:
                i = (at - start) // step
                sends[trigger][i] += effect.sent
                conversions[trigger][i] += effect.conversions_sent + effect.conversions_held_out
        return {
            "start": start,
            "step": step,
            "triggers": {
                t: {"sent": sends[t], "conversions": conversions[t]}
                for t in sorted(set(sends) | set(conversions))
            },
        }


def _minute(ms: object) -> int:
    try:
        return int(ms) // MINUTE  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return -1


def start_of_day(now: int) -> int:
    """Midnight UTC of ``now``: "today" on the page."""
    return now - now % DAY


class Tail:
    """Reads ``actions``, ``conversions`` and ``deliveries`` from the start, then follows them."""

    TOPICS = (topics.ACTIONS, topics.CONVERSIONS, topics.DELIVERIES)

    def __init__(self, bootstrap: str, tally: Tally) -> None:
        self.bootstrap = bootstrap
        self.tally = tally
        self.caught_up = False
        self.error: str | None = None

    async def run(self) -> None:
        """Follow the topics until cancelled; a broker outage is retried, and shown."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: say so on the page, retry
                self.error = (
                    f"cannot read the broker at {self.bootstrap}: {exc or type(exc).__name__}"
                )
                log.warning("%s; retrying in 2s", self.error)
                await asyncio.sleep(2)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from stream.security import kafka_client_kwargs

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            **kafka_client_kwargs(),
        )
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            checked = 0.0
            pruned = 0.0
            loop = asyncio.get_running_loop()
            while True:
                if loop.time() - checked > 5:  # topics appear when the worker starts
                    checked = loop.time()
                    # Metadata of existing topics only: asking about one by name would make
                    # Tansu create it, with its own partition count instead of the worker's.
                    await consumer.topics()
                    found = {
                        TopicPartition(t, p)
                        for t in self.TOPICS
                        for p in consumer.partitions_for_topic(t) or ()
                    }
                    if found - assigned:
                        new = found - assigned
                        assigned |= new
                        consumer.assign(sorted(assigned))
                        await consumer.seek_to_beginning(*new)
                batches = await consumer.getmany(timeout_ms=300, max_records=5000)
                got: dict[str, list[dict[str, Any]]] = {t: [] for t in self.TOPICS}
                for tp, messages in batches.items():
                    got[tp.topic].extend(r for m in messages if (r := decoded(m.value)))
                if any(got.values()):
                    self.tally.add(
                        got[topics.ACTIONS], got[topics.CONVERSIONS], got[topics.DELIVERIES]
                    )
                self.error = None
                if not batches:
                    self.caught_up = True
                    if loop.time() - pruned > 60:
                        pruned = loop.time()
                        self.tally.prune()
        finally:
            await consumer.stop()
