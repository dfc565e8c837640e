"""Moves records between Kafka, customer state and the core; the agents only call this.

One ``Runtime`` per worker process. Everything it does for an event is
synchronous except writing outputs, so the core always sees a customer's
events in order, and the batched writers keep the per-event cost low.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from agents.checkpoint import Checkpoint
from core import engine, identity
from core.attribution import GROUP_OF
from core.config import Config
from core.model import STAGES, CustomerState, Decision, Step
from monitoring import metrics
from state import codec
from state.store import CustomerStore
from state.timers import TimerIndex
from stream import topics
from stream.events import Rejection, decode_event, decode_profile
from stream.output import BULK, FAST, Lane, Output, partition_for
from stream.pacing import Pacer

log = logging.getLogger(__name__)
TIMER_SLICE = 50  # timers fired between two chances for events to run (a few ms)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ``(topic, committed offset, high watermark)`` of one partition's input topics.
InputPositions = Callable[[int], list[tuple[str, int | None, int | None]]]


class Runtime:
    def __init__(
        self, cfg: Config, store: CustomerStore, output: Output, partitions: int = 8
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.output = output
        self.partitions = partitions
        self.checkpoint = Checkpoint(output, store)
        # One budget for the worker's background work: due timers, periodic checkpoints.
        self.pacer = Pacer()
        self.timers = TimerIndex()
        self.recovered = False
        # Partitions whose state Faust has restored and whose timers are indexed: only
        # their records may be handled (an event handled earlier would meet a customer
        # not restored yet, and the timers it set would be lost by ``rebuild``).
        self.ready: set[int] = set()
        # Catching up: partitions whose input has records not yet handled. Their timers
        # fire on event time: up to the latest event handled (``fire_due``).
        self.behind: set[int] = set()
        self._event_time: dict[int, int] = {}  # per partition, capped by the wall clock
        self.input_positions: InputPositions | None = None
        self._position: dict[tuple[str, int], int] = {}  # next offset to handle
        self._children: dict[tuple[Any, ...], Any] = {}  # cached metric children: hot path
        self._processing_seconds = metrics.PROCESSING_SECONDS.labels()
        # customers in each watched audience, per partition (kairos_customers_in_audience)
        self.audiences: dict[int, Counter[str]] = {}
        self.before_flush: list[Callable[[], None]] = []  # run right before each checkpoint

    # --- input ------------------------------------------------------------
    def handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        """One input record, start to finish, without an await: effects are buffered.

        A record the code fails on (a bug) must neither stop the partition nor vanish:
        it is logged with its place and goes to ``dead-letters`` with the error.
        """
        try:
            self._handle(topic, partition, offset, key, value)
        except Exception as exc:
            log.exception("failed on %s-%d@%d", topic, partition, offset)
            bug = Rejection(f"internal error: {exc!r}", "internal_error")
            self.dead_letter(topic, partition, offset, key, value, bug)

    def _handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        self._position[(topic, partition)] = offset + 1
        if topic == topics.PROFILES:
            self._on_profile(topic, partition, offset, key, value)
            return
        if topic == topics.IDENTITY:
            self._on_identity(topic, partition, offset, key, value)
            return
        ev = decode_event(value, topic, key)
        if ev.__class__ is Rejection:
            self.dead_letter(topic, partition, offset, key, value, ev)  # type: ignore[arg-type]
            return
        self._child(metrics.EVENTS_CONSUMED, topic, ev.type).inc()  # type: ignore[union-attr]
        now = now_ms()
        at = min(ev.ts, now)  # type: ignore[union-attr]
        if at > self._event_time.get(partition, 0):
            self._event_time[partition] = at
        customer_id = ev.customer_id  # type: ignore[union-attr]
        state = self.store.get(customer_id, partition)
        if state.timers:  # their own due deadlines first, as replay does; not the burst's
            self._fire_own(partition, state, at - self.cfg.engine.timer_grace, now)
        started = time.perf_counter()
        step = engine.on_event(state, ev, now, self.cfg)  # type: ignore[arg-type]
        self._processing_seconds.observe(time.perf_counter() - started)
        if step.duplicate:
            self._child(metrics.DUPLICATES_DROPPED, topic).inc()
            return
        if step.late:
            self._child(metrics.LATE_EVENTS, topic).inc()
        self.store.touch(partition, customer_id)
        self._emit(step, partition)
        for anonymous_id in step.merges:  # its history may live on another worker
            request = {"kind": "request", "from": anonymous_id, "into": customer_id}
            self._send_identity(anonymous_id, request)

    def _send_identity(self, key: str, message: dict[str, Any]) -> None:
        """Buffered like every output, so a checkpoint's cut covers it (agents/checkpoint.py)."""
        self.output.add(topics.IDENTITY, partition_for(key, self.partitions), key, message)

    def _on_identity(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        """Anonymous history: answer a request for it, or fold an answer in (core.identity)."""
        try:
            message = orjson.loads(value or b"null")
            kind, anonymous_id, customer_id = message["kind"], message["from"], message["into"]
            other = codec.from_obj(message["state"]) if kind == "state" else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            bad = Rejection(f"unusable identity record: {exc!r}", "malformed")
            self.dead_letter(topic, partition, offset, key, value, bad)
            return
        if kind == "request":
            anonymous = self.store.peek(anonymous_id, partition)
            if anonymous is not None:
                answer = {**message, "kind": "state", "state": codec.to_obj(anonymous)}
                self._send_identity(customer_id, answer)
        elif other is not None:
            state = self.store.get(customer_id, partition)
            step = identity.merge(state, other, now_ms(), self.cfg)
            self.store.touch(partition, customer_id)
            self._emit(step, partition)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: the lookup costs more than the update."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _on_profile(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        parsed = decode_profile(value, key)
        if isinstance(parsed, Rejection):
            self.dead_letter(topic, partition, offset, key, value, parsed)
            return
        customer_id, profile = parsed
        self._child(metrics.EVENTS_CONSUMED, topic, "profile" if profile else "forget").inc()
        state = self.store.get(customer_id, partition)
        step = engine.on_profile(state, profile, now_ms(), self.cfg)
        self.store.touch(partition, customer_id)
        if step.timers or step.decisions:  # birthday timers follow the profile
            self._emit(step, partition)

    def dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        rejection: Rejection,
    ) -> None:
        self._child(metrics.EVENTS_INVALID, topic, rejection.reason).inc()
        self._child(metrics.DEAD_LETTERS, topic).inc()
        self.output.add(
            topics.DEAD_LETTERS,
            partition,
            None,
            dead_letter_record(topic, partition, offset, key, value, rejection.error),
            BULK,
        )

    # --- timers -----------------------------------------------------------
    async def fire_due(self) -> int:
        """Fire every timer whose due time plus grace has passed; returns how many fired.

        A partition that is caught up fires on the wall clock. One that is behind
        (after a failover or restart) fires up to the event time it has reached
        instead, so an order still in the backlog cancels its cart's deadline as it did
        live. A burst fires in slices: between two, the events behind it run, and a
        partition may be revoked or fall behind (a rebalance). No customer's event
        waits for the burst's order: ``_handle`` fires their own due timers first.
        """
        now = now_ms()
        self._update_behind()
        fired = 0
        for partition in self.timers.partitions():
            while True:
                timers = self.timers.of(partition)
                until = self._fire_until(partition, now)
                if timers is None or until is None:
                    break  # revoked meanwhile (its new owner fires it), or no event yet
                fired += timers.fire(
                    until,
                    partial(self.store.get, partition=partition),
                    self.cfg,
                    partial(self._fired, partition, now),
                    now=now,
                    limit=TIMER_SLICE,
                )
                due = timers.next_due()
                if due is None or due > until:
                    break
                await self.pacer.step()  # a burst must not stall the events behind it
        metrics.TIMERS_PENDING.set(len(self.timers))
        return fired

    def _fire_until(self, partition: int, now: int) -> int | None:
        """The due time up to which ``partition``'s timers fire now (None: none yet)."""
        grace = self.cfg.engine.timer_grace
        if partition not in self.behind:
            return now - grace
        reached = self._event_time.get(partition)
        return None if reached is None else min(now, reached) - grace

    def _fire_own(self, partition: int, state: CustomerState, until: int, now: int) -> None:
        timers = self.timers.of(partition)
        if timers is not None:
            timers.fire_own(state, until, self.cfg, partial(self._fired, partition, now), now)

    def _fired(self, partition: int, now: int, step: Step, kind: str, due: int) -> None:
        """A timer fired (``Timers.fire`` has queued the timers it set): count it, hand it on."""
        self._child(metrics.TIMERS_FIRED, kind).inc()
        lateness = now - due - self.cfg.engine.timer_grace
        metrics.TIMER_LATENESS_SECONDS.observe(max(0, lateness) / 1000)
        self.store.touch(partition, step.state.customer_id)
        self._output(step, partition, BULK)  # a burst of these must not delay fresh decisions

    def _update_behind(self) -> None:
        """Which assigned partitions may have input on the broker that is not handled yet.

        Unknown counts as behind: while the broker is unreachable, deadlines wait for the
        events that could cancel them instead of firing on the wall clock.
        """
        positions = self.input_positions
        if positions is None:
            self.behind = set()
            return
        behind = set()
        for partition in self.timers.partitions():
            for topic, committed, highwater in positions(partition):
                handled = self._position.get((topic, partition), committed) or 0
                if highwater is None or handled < highwater:  # unread input, or not known
                    behind.add(partition)
                    break
        self.behind = behind
        metrics.PARTITIONS_CATCHING_UP.set(len(behind))

    def rebuild(self, partitions: set[int]) -> None:
        """After recovery: re-index pending timers and stage counts from the restored state."""
        per_partition: dict[int, list[tuple[int, str, str]]] = {}
        for partition in partitions:
            entries: list[tuple[int, str, str]] = []
            stages: list[str] = []
            inside: list[str] = []
            add_entry, add_stage, add_inside = entries.append, stages.append, inside.extend
            # Every stored customer passes here (a million: seconds of a restart), so the
            # loop keeps to local names and counts once at the end.
            for customer_id, stage, timers, segments in self.store.recovered(partition):
                for kind, due in timers.items():
                    add_entry((due, customer_id, kind))
                add_stage(stage)
                if segments:  # "!name": seen outside (core.segments.Compiled.after)
                    add_inside(name for name in segments if name[0] != "!")
            per_partition[partition] = entries
            self.store.stages[partition] = Counter(stages)
            self.audiences.pop(partition, None)
            if inside:
                self.audiences[partition] = Counter(inside)
        for partition, entries in per_partition.items():
            self.timers.rebuild(partition, entries)
        log.info(
            "recovered partitions %s: %d customers, %d pending timers",
            sorted(partitions),
            sum(sum(self.store.stages.get(p, {}).values()) for p in partitions),
            sum(len(entries) for entries in per_partition.values()),
        )
        self.behind |= partitions  # until the next look at their lag says otherwise
        self.ready |= partitions
        self.recovered = True
        self.update_stage_gauge()

    def accepts(self, partition: int) -> bool:
        """Whether ``partition``'s records may be handled now (see ``ready``)."""
        return partition in self.ready

    def revoked(self, partitions: set[int]) -> None:
        self.ready -= partitions
        for partition in partitions:
            self.timers.drop(partition)
            self.store.drop(partition)
            self.audiences.pop(partition, None)
        self.behind -= partitions
        for partition in partitions:
            self._event_time.pop(partition, None)
        self._position = {tp: o for tp, o in self._position.items() if tp[1] not in partitions}
        self.update_stage_gauge()

    # --- output -----------------------------------------------------------
    def _emit(self, step: Step, partition: int, lane: Lane = FAST) -> None:
        """Queue the step's new timers and buffer its records (sent by ``Output.drain``)."""
        if step.timers:
            self.timers.schedule(partition, step.timers)
        self._output(step, partition, lane)

    def _output(self, step: Step, partition: int, lane: Lane) -> None:
        """Buffer the step's stage changes, decisions and conversions."""
        add = self.output.add
        for sc in step.stage_changes:
            self.store.stage_moved(partition, sc.from_stage, sc.to_stage)
            self._child(metrics.STAGE_CHANGES, sc.from_stage, sc.to_stage).inc()
            add(topics.STAGE_CHANGES, partition, sc.customer_id, sc.to_record(), lane)
        if step.decisions:
            wall = now_ms()
            for d in step.decisions:
                self._child(metrics.DECISIONS, d.trigger, d.status).inc()
                if d.trigger == "lead_qualified":
                    self._child(metrics.MQLS, str(d.payload.get("owner") or "")).inc()
                self._child(metrics.DECISION_LAG_SECONDS, d.trigger).observe(
                    max(0, wall - d.cause_ts) / 1000
                )
                add(topics.ACTIONS, partition, d.customer_id, d.to_record(), lane)
                self._experiment_metrics(d)
        for g in step.segment_changes:
            self._child(metrics.SEGMENT_CHANGES, g.kind, g.name, g.change).inc()
            if g.kind == "audience":
                counts = self.audiences.setdefault(partition, Counter())
                counts[g.name] += 1 if g.change == "entered" else -1
            add(topics.SEGMENT_CHANGES, partition, g.customer_id, g.to_record(), lane)
        for c in step.conversions:
            self._child(metrics.CONVERSIONS, c.trigger, c.group).inc()
            self._child(metrics.CONVERSION_REVENUE, c.trigger, c.group).inc(c.revenue)
            add(topics.CONVERSIONS, partition, c.customer_id, c.to_record(), lane)
            if c.variant is not None:
                self._child(metrics.VARIANT_CONVERSIONS, c.trigger, c.variant, c.group).inc()
                self._child(metrics.VARIANT_CONVERSION_REVENUE, c.trigger, c.variant, c.group).inc(
                    c.revenue
                )
            if c.discount:
                self._child(metrics.CONVERSION_DISCOUNT, c.trigger).inc(c.discount)

    def _experiment_metrics(self, d: Decision) -> None:
        """Per variant, and what a message decided to send costs (``core.roi``)."""
        if d.variant is not None:
            self._child(metrics.VARIANT_DECISIONS, d.trigger, d.variant, d.status).inc()
        if GROUP_OF.get(d.status) == "sent":
            self._child(metrics.MESSAGE_COST, d.trigger, d.channel).inc(
                self.cfg.costs.of(d.channel)
            )

    async def flush(self, paced: bool = False) -> None:
        """Persist every effect so far, outputs before states (``agents/checkpoint.py``).

        ``paced``: the periodic checkpoint leaves room for events while it encodes
        (``stream/pacing.py``); one that a commit, a revocation or shutdown waits for
        does not, since what waits for it is the events themselves.
        """
        for hook in self.before_flush:  # outputs due at the cut (agents/products.py)
            hook()
        await self.checkpoint.run(self.pacer if paced else None)

    def update_stage_gauge(self) -> None:
        totals: dict[str, int] = {}
        for counts in self.store.stages.values():
            for stage, n in counts.items():
                totals[stage] = totals.get(stage, 0) + n
        for stage in STAGES:
            metrics.CUSTOMERS_BY_STAGE.labels(stage).set(totals.get(stage, 0))
        audiences: Counter[str] = Counter()
        for counts in self.audiences.values():
            audiences.update(counts)
        for name, n in audiences.items():
            metrics.CUSTOMERS_IN_AUDIENCE.labels(name).set(n)


def dead_letter_record(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, error: str
) -> dict[str, Any]:
    """The contract's dead-letters record; ``raw`` is text when the bytes are UTF-8."""
    raw: str | None
    encoding = "text"
    if value is None:
        raw = None
    else:
        try:
            raw = value.decode()
        except UnicodeDecodeError:
            raw, encoding = base64.b64encode(value).decode(), "base64"
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode(errors="replace") if key is not None else None,
        "raw": raw,
        "raw_encoding": encoding,
        "error": error,
        "at": now_ms(),
    }
