"""The dispatcher: turns ``send`` actions into messages, under contact policy, exactly once.

Flow of one action (see ``docs``-level notes in ``agents/dispatcher.py`` for the Kafka
side):

1. ``accept`` (called by the agent for every ``actions`` record, before its offset can be
   committed): ``send`` is queued in the Redis ``Schedule`` for now,
   ``deferred_quiet_hours`` for ``payload.deliver_at`` (recorded once as
   ``deferred_quiet_hours``); every other status was already decided by the worker and
   is ignored. Actions the ``DeliveryLedger`` has seen are not queued again.
2. ``tick`` (a timer) takes due entries under a lease and delivers them in background
   tasks, one task per customer (that customer's entries in priority order), at most
   ``max_inflight`` entries at a time; channels are bounded by ``ChannelPool``.
3. Per entry: claim in the ledger; re-check the trigger is still enabled (``disabled``)
   and the customer's consent (``suppressed_consent``); on capped channels, admit through
   ``ContactPolicy`` (``suppressed_priority``, or ``deferred_frequency_cap`` until the cap
   frees up, or ``suppressed_frequency_cap`` when the offer's ``expires_at`` comes
   first); render; send with retries, timeout, backoff and the circuit breaker; record.

``deliveries`` records keep the contract's fields and add ``trigger``, ``customer_id``,
``reason`` and ``deliver_at`` (deferrals). Outcomes beyond the contract's four
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
==============================  ====================================================

plus the ``KAIROS_DELIVERY_*`` retry settings and the channel variables of
``channels/settings.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from channels.base import Message
from channels.contacts import Contact, ContactBook
from channels.idempotency import DeliveryLedger
from channels.policy import ContactPolicy
from channels.resilience import ChannelPool, DeliveryOutcome, RetryPolicy
from channels.schedule import Schedule
from core.config import Config
from core.templates import render
from monitoring.metrics import DELIVERIES
from stream import topics

log = logging.getLogger("kairos.dispatch")

QUEUED_STATUSES = frozenset({"send", "deferred_quiet_hours"})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Publisher(Protocol):
    async def send(self, topic: str, key: str | None, value: dict) -> None: ...
    async def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    metrics_port: int = 9101
    channel_override: str = ""
    concurrency: int = 16
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    tick_s: float = 0.1
    max_inflight: int = 1000

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
        )


def lease_ms(policy: RetryPolicy) -> int:
    """Longer than any one delivery can take: every attempt timing out, every backoff max."""
    worst = policy.max_attempts * (policy.attempt_timeout_s + policy.max_delay_s)
    return int((worst + 30) * 1000)


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
    }


def outcome_record(action: Mapping[str, Any], result: DeliveryOutcome) -> dict[str, Any]:
    record = delivery_record(
        action,
        result.outcome,
        channel=result.channel,
        attempts=result.attempts,
        latency_ms=result.latency_ms,
        error=result.error,
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
    ) -> None:
        self.config = config
        self.pool = pool
        self.schedule = schedule
        self.ledger = ledger
        self.policy = policy
        self.contacts = contacts
        self.output = output
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0

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
        room = self.settings.max_inflight - self._inflight
        entries = await self.schedule.pop_due(now_ms(), room)
        if not entries:
            return 0
        per_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in entries:
            per_customer[entry.get("customer_id", "")].append(entry)
        for group in per_customer.values():
            self._inflight += len(group)
            task = asyncio.create_task(self._run_group(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(entries)

    async def drain(self, timeout_s: float) -> None:
        """Let running deliveries finish (shutdown); unfinished ones come back by lease."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    @property
    def inflight(self) -> int:
        return self._inflight

    async def _run_group(self, group: list[dict[str, Any]]) -> None:
        cfg = self.config()
        group.sort(key=lambda a: -self._priority(cfg, a))  # the winner goes first
        for action in group:
            try:
                await self.handle(action, cfg)
            except Exception:  # a bug: log with context; the lease brings the entry back
                log.exception("delivering action %s failed", action.get("action_id"))
            finally:
                self._inflight -= 1

    @staticmethod
    def _priority(cfg: Config, action: Mapping[str, Any]) -> int:
        tcfg = cfg.triggers.get(action.get("trigger", ""))
        return tcfg.priority if tcfg is not None else 0

    # --- one entry ---------------------------------------------------------------
    async def handle(self, action: dict[str, Any], cfg: Config) -> None:
        action_id = action["action_id"]
        now = now_ms()
        claim = await self.ledger.claim(action_id, now)
        if claim.kind == "busy":
            return  # another worker is on it; its lease brings it back if it dies
        if claim.kind == "done":
            await self.schedule.complete(action_id)
            return
        if claim.kind == "sent":  # crashed after sending, before recording
            await self._publish(claim.record or {})
            await self._finish(action_id)
            return
        if claim.kind == "interrupted":
            error = "delivery interrupted: the worker stopped mid-send; not resent (at most once)"
            await self._record(action, "dead", error=error)
            await self._finish(action_id)
            return

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

        async def on_retry(result: DeliveryOutcome) -> None:
            await self.output.send(topics.DELIVERIES, action_id, outcome_record(action, result))

        result = await self.pool.deliver(msg, on_retry=on_retry)
        if result.outcome != "delivered" and capped:
            await self.policy.release(
                customer_id=action["customer_id"],
                action_id=action_id,
                channel=channel,
                trigger=trigger,
                priority=priority,
            )
        record = outcome_record(action, result)
        await self.ledger.sent(action_id, record)
        await self._publish(record)
        await self._finish(action_id)

    async def _capped(self, action: dict[str, Any], free_at: int, cap: str) -> None:
        action_id = action["action_id"]
        await self.ledger.release(action_id)
        expires_at = (action.get("payload") or {}).get("expires_at")
        if isinstance(expires_at, int | float) and expires_at <= free_at:
            reason = (
                f"frequency cap {cap}: the offer expires at {int(expires_at)}, before {free_at}"
            )
            await self._record(action, "suppressed_frequency_cap", reason=reason)
            await self.ledger.done(action_id)
            await self.schedule.complete(action_id)
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
        await self.ledger.done(action_id)
        await self.schedule.complete(action_id)

    async def close(self) -> None:
        await self.pool.close()
