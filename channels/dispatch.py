"""The dispatcher: turns ``send`` actions into messages, under contact policy, at least once.

Flow of one action (see ``docs``-level notes in ``agents/dispatcher.py`` for the Kafka
side):

1. ``accept`` (called by the agent for every ``actions`` record, before its offset can be
   committed): ``send`` is queued in the Redis ``Schedule`` for now,
   ``deferred_quiet_hours`` for ``payload.deliver_at`` (recorded once as
   ``deferred_quiet_hours``); every other status was already decided by the worker and
   is ignored. Actions the ``DeliveryLedger`` has seen are not queued again.
2. ``tick`` (a timer) takes due entries under a short lease and delivers them in
   background tasks, one task per customer (that customer's entries in priority order),
   at most ``max_inflight`` entries at a time; channels are bounded by ``ChannelPool``.
   ``keep_leases`` renews the leases of every entry this process still holds.
3. Per entry: look at the ledger (finished, or another dispatcher mid-send: skip); re-check
   the trigger is still enabled (``disabled``) and the customer's consent
   (``suppressed_consent``); on capped channels, admit through ``ContactPolicy``
   (``suppressed_priority``, or ``deferred_frequency_cap`` until the cap frees up, or
   ``suppressed_frequency_cap`` when the offer's ``expires_at`` comes first); render;
   send with retries, timeout, backoff and the circuit breaker, marking the attempt in
   the ledger only once a channel slot is held, right before the provider call; record
   the outcome in the ledger (retried until Redis answers), then on ``deliveries``.

Crashes: at least once towards providers, with the ``action_id`` as idempotency key
(``channels.idempotency``). A dispatcher killed at any point loses nothing: its entries
come back within about a lease and are sent by whoever takes them; one that may already
have reached the provider is sent again with ``maybe_resent: true`` on its ``deliveries``
record and ``kairos_deliveries_resent_total`` counted. ``dead`` only ever means the
provider kept failing (or its circuit was open).

Shutdown (``shutdown``, on SIGTERM): take no new entries, hand back at once the ones not
yet at the provider, let sends in progress finish for up to ``KAIROS_DISPATCH_DRAIN``
seconds and publish their records; what is still running then is cancelled and handed
back, its attempt marked interrupted so the next dispatcher resends it (flagged) at once.

Redis: one client shared by every delivery, on a ``BlockingConnectionPool`` of
``max_inflight`` + ``REDIS_POOL_SPARE`` connections (``redis_pool_size``); a caller that
finds it exhausted waits (up to ``REDIS_POOL_WAIT_S``) instead of failing.

``deliveries`` records keep the contract's fields and add ``trigger``, ``customer_id``,
``reason``, ``deliver_at`` (deferrals) and ``maybe_resent`` (true when an earlier
dispatcher may have sent the message already; ``reason`` then says so). Outcomes beyond the contract's four
(delivered, failed, retrying, dead) use the ``actions`` status vocabulary:
``disabled``, ``suppressed_consent``, ``suppressed_priority``,
``suppressed_frequency_cap``, ``deferred_quiet_hours``, ``deferred_frequency_cap``.

Templates: the trigger's ``template`` rendered with ``core.templates.render`` over the
payload, ``customer_id``, ``trigger``, ``action_id`` and the contact directory's
``email``, ``phone``, ``locale``, ``timezone``, ``first_name``. A one-line template is
both subject and body; with several lines the first is the subject, the rest the body.

Environment (read by :meth:`DispatchSettings.from_env`):

==============================  ====================================================
KAIROS_DISPATCHER_METRICS_PORT  ``/metrics``, ``/health``, ``/ready`` (``9101``; 0 off)
KAIROS_CHANNEL_OVERRIDE         send every message through this channel (``console``
                                for the demo); policy still uses the action's channel
KAIROS_CHANNEL_CONCURRENCY      concurrent sends per channel (``16``)
KAIROS_CIRCUIT_FAILURES         consecutive failures that open a channel's circuit (``5``)
KAIROS_CIRCUIT_COOLDOWN         seconds before a half-open probe (``30``)
KAIROS_DISPATCH_TICK            seconds between looks at the schedule (``0.1``)
KAIROS_DISPATCH_MAX_INFLIGHT    entries being delivered at once per process (``1000``)
KAIROS_DISPATCH_LEASE           seconds an entry stays with its dispatcher without a
                                renewal (``10``; renewed every third of it): a
                                killed dispatcher's entries come back after about this
KAIROS_DISPATCH_DRAIN           seconds a SIGTERM waits for sends in progress (``10``)
KAIROS_DELIVERY_GIVE_UP_AFTER   seconds after its decision that an action whose provider is
                                down stops being retried and is recorded ``dead`` (``21600``)
==============================  ====================================================

plus the ``KAIROS_DELIVERY_*`` retry settings and the channel variables of
``channels/settings.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from channels.base import Message
from channels.contacts import Contact, ContactBook
from channels.idempotency import DeliveryLedger
from channels.policy import ContactPolicy
from channels.resilience import ChannelPool, DeliveryOutcome, until_redis_answers
from channels.schedule import Schedule
from core.config import Config
from core.templates import render
from monitoring.metrics import DELIVERIES, DELIVERIES_RESENT, REDIS_ERRORS
from stream import topics

log = logging.getLogger("kairos.dispatch")

QUEUED_STATUSES = frozenset({"send", "deferred_quiet_hours"})
REDIS_POOL_SPARE = 32  # connections beyond one per delivery: intake, leases, config, contacts
REDIS_POOL_WAIT_S = 10.0
REDELIVER_MAX_S = 900.0  # the longest wait between two rounds for a provider that is down
RESENT_REASON = (
    "possibly sent before: a dispatcher stopped while sending it; sent again with the same "
    "action_id (idempotency key)"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Publisher(Protocol):
    async def send(self, topic: str, key: str | None, value: dict) -> None: ...
    async def flush(self) -> None: ...


class DispatchSettingsError(ValueError):
    """A dispatcher setting from the environment that cannot be used."""


def _seconds(env: Mapping[str, str], name: str, default: str, *, zero_ok: bool) -> float:
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 or (zero_ok and value == 0)):
        bound = ">= 0" if zero_ok else "> 0"
        raise DispatchSettingsError(f"{name} must be a number of seconds {bound}, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    metrics_port: int = 9101
    channel_override: str = ""
    concurrency: int = 16
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    tick_s: float = 0.1
    max_inflight: int = 1000
    lease_s: float = 10.0
    drain_s: float = 10.0
    give_up_after_s: float = 6 * 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DispatchSettings:
        e = os.environ if env is None else env
        return cls(
            metrics_port=int(e.get("KAIROS_DISPATCHER_METRICS_PORT", "9101")),
            channel_override=e.get("KAIROS_CHANNEL_OVERRIDE", "").strip(),
            concurrency=int(e.get("KAIROS_CHANNEL_CONCURRENCY", "16")),
            circuit_failures=int(e.get("KAIROS_CIRCUIT_FAILURES", "5")),
            circuit_cooldown_s=float(e.get("KAIROS_CIRCUIT_COOLDOWN", "30")),
            tick_s=float(e.get("KAIROS_DISPATCH_TICK", "0.1")),
            max_inflight=int(e.get("KAIROS_DISPATCH_MAX_INFLIGHT", "1000")),
            lease_s=_seconds(e, "KAIROS_DISPATCH_LEASE", "10", zero_ok=False),
            drain_s=_seconds(e, "KAIROS_DISPATCH_DRAIN", "10", zero_ok=True),
            give_up_after_s=_seconds(e, "KAIROS_DELIVERY_GIVE_UP_AFTER", "21600", zero_ok=True),
        )

    @property
    def lease_ms(self) -> int:
        return int(self.lease_s * 1000)


def lease_ms(_policy: object = None) -> int:
    """The configured lease (``KAIROS_DISPATCH_LEASE``): how long a killed dispatcher's
    entries wait before another takes them. Leases are renewed, so unlike before they no
    longer depend on the retry policy (the argument is ignored)."""
    return DispatchSettings.from_env().lease_ms


def redis_pool_size(settings: DispatchSettings) -> int:
    """Every delivery in flight may hold one Redis connection at a time, plus the rest."""
    return settings.max_inflight + REDIS_POOL_SPARE


class NotSending(Exception):
    """Raised right before a provider call that must not happen (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Attempt:
    """One delivery's progress towards the provider."""

    started: bool = False  # a provider call was (about to be) made
    resent: bool = False  # an earlier dispatcher may have made it already


def render_message(action: Mapping[str, Any], template: str, contact: Contact) -> tuple[str, str]:
    """(subject, body) of ``action`` from its trigger's template."""
    payload = action.get("payload") or {}
    values = {
        **contact.template_values(),
        **payload,
        "customer_id": action["customer_id"],
        "trigger": action["trigger"],
        "action_id": action["action_id"],
    }
    text = render(template, values).strip()
    subject, _, rest = text.partition("\n")
    return subject.strip(), (rest.strip() or subject.strip())


def delivery_record(
    action: Mapping[str, Any],
    outcome: str,
    *,
    channel: str | None = None,
    attempts: int = 0,
    latency_ms: int = 0,
    error: str | None = None,
    reason: str = "",
    deliver_at: int | None = None,
    maybe_resent: bool = False,
) -> dict[str, Any]:
    """A ``deliveries`` record: the contract's fields first, then the extensions."""
    return {
        "action_id": action["action_id"],
        "channel": channel or action["channel"],
        "outcome": outcome,
        "attempts": attempts,
        "latency_ms": latency_ms,
        "error": error,
        "at": now_ms(),
        "trigger": action.get("trigger"),
        "customer_id": action.get("customer_id"),
        "reason": reason,
        "deliver_at": deliver_at,
        "maybe_resent": maybe_resent,
    }


def outcome_record(
    action: Mapping[str, Any], result: DeliveryOutcome, *, maybe_resent: bool = False
) -> dict[str, Any]:
    record = delivery_record(
        action,
        result.outcome,
        channel=result.channel,
        attempts=result.attempts,
        latency_ms=result.latency_ms,
        error=result.error,
        reason=RESENT_REASON if maybe_resent else "",
        maybe_resent=maybe_resent,
    )
    record["at"] = result.at
    return record


class Dispatcher:
    def __init__(
        self,
        *,
        config: Callable[[], Config],
        pool: ChannelPool,
        schedule: Schedule,
        ledger: DeliveryLedger,
        policy: ContactPolicy,
        contacts: ContactBook,
        output: Publisher,
        settings: DispatchSettings,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.schedule = schedule
        self.ledger = ledger
        self.policy = policy
        self.contacts = contacts
        self.output = output
        self.settings = settings
        self.owner = owner or uuid.uuid4().hex[:12]  # names this process's attempt marks
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: set[str] = set()  # entries leased to this process, not finished
        self._closing = False
        # Renewals and hand-backs take turns, so a renewal never undoes a hand-back.
        self._leases = asyncio.Lock()

    # --- intake: called by the agent, before the offset may be committed -------
    async def accept(self, action: dict[str, Any]) -> None:
        status = action.get("status")
        if status not in QUEUED_STATUSES or not action.get("action_id"):
            return
        if await self.ledger.seen(action["action_id"]):
            return  # redelivered after it was handled
        now = now_ms()
        if status == "send":
            await self.schedule.add(action, now)
            return
        payload = action.get("payload") or {}
        deliver_at = int(payload.get("deliver_at") or now)
        if await self.schedule.add(action, deliver_at):
            reason = f"quiet hours: held until {deliver_at}"
            await self._record(action, "deferred_quiet_hours", reason=reason, deliver_at=deliver_at)

    # --- the loop over due entries ---------------------------------------------
    async def tick(self) -> int:
        """Start delivering what is due; returns how many entries were taken."""
        if self._closing:
            return 0
        room = self.settings.max_inflight - len(self._held)
        entries = await self.schedule.pop_due(now_ms(), room)
        # An entry already held here came back because a renewal failed: it is running.
        entries = [e for e in entries if e["action_id"] not in self._held]
        if not entries:
            return 0
        if self._closing:  # shutdown began while they were being taken
            await self._hand_back([e["action_id"] for e in entries])
            return 0
        self._held.update(e["action_id"] for e in entries)
        per_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in entries:
            per_customer[entry.get("customer_id", "")].append(entry)
        for group in per_customer.values():
            task = asyncio.create_task(self._run_group(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(entries)

    @property
    def inflight(self) -> int:
        return len(self._held)

    async def _run_group(self, group: list[dict[str, Any]]) -> None:
        cfg = self.config()
        group.sort(key=lambda a: -self._priority(cfg, a))  # the winner goes first
        for i, action in enumerate(group):
            if self._closing:  # not started: another dispatcher takes them now
                await self._hand_back([a["action_id"] for a in group[i:]])
                return
            action_id = action["action_id"]
            try:
                await self.handle(action, cfg)
            except (redis.RedisError, OSError) as exc:  # the lease brings the entry back
                REDIS_ERRORS.labels("delivery").inc()
                log.warning("delivering action %s: redis unavailable (%s)", action_id, exc)
            except Exception:  # a bug: log with context; the lease brings the entry back
                log.exception("delivering action %s failed", action_id)
            # Cancelled (shutdown gave up waiting) skips this: ``shutdown`` hands it back.
            self._held.discard(action_id)

    @staticmethod
    def _priority(cfg: Config, action: Mapping[str, Any]) -> int:
        tcfg = cfg.triggers.get(action.get("trigger", ""))
        return tcfg.priority if tcfg is not None else 0

    # --- leases ------------------------------------------------------------------
    async def keep_leases(self) -> None:
        """Renew held entries every third of a lease, for as long as the process runs."""
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        async with self._leases:
            if not self._held:
                return
            held, now = list(self._held), now_ms()
            try:
                # Marks first: an entry whose lease lapses finds its attempt already stale.
                await self.ledger.renew(held, self.owner, now)
                await self.schedule.renew(held, now)
            except (redis.RedisError, OSError) as exc:
                REDIS_ERRORS.labels("lease").inc()
                log.warning("renewing %d leases failed (%s)", len(held), exc)

    async def _hand_back(self, action_ids: Collection[str], at: int | None = None) -> None:
        """Stop holding entries; they are due again at ``at`` (now by default)."""
        async with self._leases:
            self._held.difference_update(action_ids)
            try:
                await self.schedule.release(action_ids, now_ms() if at is None else at)
            except (redis.RedisError, OSError) as exc:  # their leases run out instead
                REDIS_ERRORS.labels("lease").inc()
                log.warning("handing back %d entries failed (%s)", len(action_ids), exc)

    # --- shutdown ------------------------------------------------------------------
    async def shutdown(self) -> None:
        """SIGTERM: no new sends, finish those in progress (bounded), hand back the rest."""
        self._closing = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.drain_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        async with self._leases:
            left, self._held = list(self._held), set()
            if left:
                log.warning("shutdown: %d deliveries did not finish; handed back", len(left))
                try:
                    await self.ledger.abandon(left, self.owner)  # resent at once, flagged
                    await self.schedule.release(left, now_ms())
                except (redis.RedisError, OSError) as exc:  # their leases run out instead
                    REDIS_ERRORS.labels("lease").inc()
                    log.warning("handing back %d entries failed (%s)", len(left), exc)
        await self.output.flush()
        await self.pool.close()

    # --- one entry ---------------------------------------------------------------
    async def handle(self, action: dict[str, Any], cfg: Config) -> None:
        action_id = action["action_id"]
        now = now_ms()
        found = await self.ledger.check(action_id, self.owner, now)
        if found.kind == "busy":  # another dispatcher is sending it: look when that goes stale
            await self._hand_back([action_id], found.since + self.ledger.lease_ms)
            return
        if found.kind == "done":
            await until_redis_answers("schedule", lambda: self.schedule.complete(action_id))
            return
        if found.kind == "sent":  # sent, then stopped before recording
            await self._publish(found.record or {})
            await self._finish(action_id)
            return
        # new, or an attempt nobody confirmed (``interrupted``): decide, then send

        channel, trigger = action["channel"], action["trigger"]
        tcfg = cfg.triggers.get(trigger)
        if tcfg is not None and not tcfg.enabled:
            await self._record(action, "disabled", reason=f"trigger {trigger} is disabled")
            await self._finish(action_id)
            return
        contact = await self.contacts.get(action["customer_id"])
        if not contact.allows(channel):
            await self._record(action, "suppressed_consent", reason=f"no consent for {channel}")
            await self._finish(action_id)
            return

        capped = not self.policy.exempt(cfg.policy, channel)
        priority = tcfg.priority if tcfg is not None else 0
        if capped:
            verdict = await self.policy.admit(
                cfg.policy,
                customer_id=action["customer_id"],
                action_id=action_id,
                channel=channel,
                trigger=trigger,
                priority=priority,
                now=now,
            )
            if verdict.kind == "priority":
                reason = f"{verdict.detail} has higher priority within the priority window"
                await self._record(action, "suppressed_priority", reason=reason)
                await self._finish(action_id)
                return
            if verdict.kind == "capped":
                await self._capped(action, verdict.free_at, verdict.detail)
                return

        subject, body = render_message(action, tcfg.template if tcfg else "", contact)
        msg = Message(
            action_id=action_id,
            channel=self.settings.channel_override or channel,
            customer_id=action["customer_id"],
            trigger=trigger,
            subject=subject,
            body=body,
            to=contact.address(channel),
            payload=action.get("payload") or {},
            created_at=int(action.get("decided_at") or 0),
        )
        attempt = _Attempt()

        async def before_send() -> None:  # the channel slot is held: the provider is next
            if self._closing and not attempt.started:
                raise NotSending("closing")
            claim = await self.ledger.claim(action_id, self.owner, now_ms())
            if claim.kind in ("busy", "sent", "done"):
                raise NotSending(claim.kind)
            # Someone's attempt (ours too, if an earlier run here failed) came before this one.
            earlier = claim.kind == "interrupted" or (claim.kind == "mine" and not attempt.started)
            if earlier and not attempt.resent:
                attempt.resent = True
                DELIVERIES_RESENT.labels(channel=msg.channel).inc()
            attempt.started = True

        async def on_retry(result: DeliveryOutcome) -> None:
            record = outcome_record(action, result, maybe_resent=attempt.resent)
            await self.output.send(topics.DELIVERIES, action_id, record)

        try:
            result = await self.pool.deliver(msg, on_retry=on_retry, before_send=before_send)
        except NotSending as stop:
            if stop.reason == "closing":
                await self._hand_back([action_id])
            return  # busy: another dispatcher is sending it; sent, done: it finished it

        # The provider answered: from here every write is retried until Redis answers.
        record = outcome_record(action, result, maybe_resent=attempt.resent)
        if result.outcome != "delivered" and capped:
            await until_redis_answers(
                "policy",
                lambda: self.policy.release(
                    customer_id=action["customer_id"],
                    action_id=action_id,
                    channel=channel,
                    trigger=trigger,
                    priority=priority,
                ),
            )
        if result.outcome == "dead" and await self._later(action, result, attempt.started):
            return
        await until_redis_answers("ledger", lambda: self.ledger.sent(action_id, record))
        await self._publish(record)
        await self._finish(action_id)

    async def _later(self, action: dict[str, Any], result: DeliveryOutcome, tried: bool) -> bool:
        """A provider that is down gets the message later, not never.

        Retries exhausted or the channel's circuit open: the action goes back to the
        schedule for another round (a circuit cooldown, doubling, at most 15 min), recorded
        as ``retrying`` with its ``deliver_at``, until ``KAIROS_DELIVERY_GIVE_UP_AFTER``
        (6 h) after the decision, or an offer's ``expires_at``, comes first: then ``dead``.
        """
        now = now_ms()
        rounds = int(action.get("redeliveries") or 0)
        wait_s = min(REDELIVER_MAX_S, self.settings.circuit_cooldown_s * 2**rounds)
        retry_at = now + int(wait_s * 1000)
        decided = int(action.get("decided_at") or now)
        expires_at = (action.get("payload") or {}).get("expires_at")
        if retry_at - decided > self.settings.give_up_after_s * 1000 or (
            isinstance(expires_at, int | float) and expires_at <= retry_at
        ):
            return False
        action_id = action["action_id"]
        if tried and "timed out" in (result.error or ""):  # it may have arrived: flag the next
            await until_redis_answers(
                "ledger", lambda: self.ledger.abandon([action_id], self.owner)
            )
        elif tried:  # the provider refused every attempt: the next one is a first send
            await until_redis_answers("ledger", lambda: self.ledger.clear(action_id))
        later = {**action, "redeliveries": rounds + 1}
        await until_redis_answers("schedule", lambda: self.schedule.reschedule(later, retry_at))
        reason = f"provider unavailable ({result.error}); delivery {rounds + 2} at {retry_at}"
        await self._record(
            action,
            "retrying",
            channel=result.channel,
            attempts=result.attempts,
            error=result.error,
            reason=reason,
            deliver_at=retry_at,
        )
        return True

    async def _capped(self, action: dict[str, Any], free_at: int, cap: str) -> None:
        action_id = action["action_id"]
        expires_at = (action.get("payload") or {}).get("expires_at")
        if isinstance(expires_at, int | float) and expires_at <= free_at:
            reason = (
                f"frequency cap {cap}: the offer expires at {int(expires_at)}, before {free_at}"
            )
            await self._record(action, "suppressed_frequency_cap", reason=reason)
            await self._finish(action_id)
            return
        await self.schedule.reschedule(action, free_at)
        reason = f"frequency cap {cap}: deferred until {free_at}"
        await self._record(action, "deferred_frequency_cap", reason=reason, deliver_at=free_at)

    async def _record(self, action: Mapping[str, Any], outcome: str, **fields: Any) -> None:
        record = delivery_record(action, outcome, **fields)
        DELIVERIES.labels(channel=record["channel"], outcome=outcome).inc()
        await self._publish(record)

    async def _publish(self, record: dict[str, Any]) -> None:
        await self.output.send(topics.DELIVERIES, record.get("action_id"), record)
        await self.output.flush()

    async def _finish(self, action_id: str) -> None:
        await until_redis_answers("ledger", lambda: self.ledger.done(action_id))
        await until_redis_answers("schedule", lambda: self.schedule.complete(action_id))
