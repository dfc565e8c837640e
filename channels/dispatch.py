"""The dispatcher: the I/O around ``channels/decision.py``, at least once.

Flow of one action (the Kafka side: ``agents/dispatcher.py``):

1. ``accept`` (called by the agent for every ``actions`` record, parsed into an
   ``Action``, before its offset can be committed): ``decision.queue_at`` says when it
   is due (a ``send`` now, a ``deferred_quiet_hours`` at ``payload.deliver_at``,
   recorded once as ``deferred_quiet_hours``; every other status was decided by the
   worker and is ignored); it is queued in the Redis ``Schedule`` then. Actions the
   ``DeliveryLedger`` has seen are not queued again.
2. ``tick`` (a timer) takes due entries under a short lease and delivers them in
   background tasks, one task per customer (that customer's entries in priority order),
   at most ``max_inflight`` entries at a time; channels are bounded by ``ChannelPool``.
   ``keep_leases`` renews the leases of every entry this process holds.
3. ``handle``, per entry: look at the ledger (finished, or another dispatcher mid-send:
   skip); read the contact; ``decision.screen`` (``disabled``, ``suppressed_consent``);
   on capped channels, admit through ``ContactPolicy`` (atomic in Redis) and
   ``decision.after_caps`` (``suppressed_priority``, ``deferred_frequency_cap`` until the
   cap frees up, ``suppressed_frequency_cap`` when the offer's ``expires_at`` comes
   first); render; send with retries, timeout, backoff and the circuit breaker, marking
   the attempt in the ledger only once a channel slot is held, right before the provider
   call; record the outcome in the ledger (retried until Redis answers), then on
   ``deliveries`` (``channels/deliveries.py``). A provider that is down gets it in a later
   round (``decision.next_round``), until it is given up as ``dead``.

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

Settings (environment): ``channels/settings.py``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any, Protocol

import redis

from channels import decision
from channels.actions import Action
from channels.contacts import Contact, ContactBook
from channels.deliveries import DeliveryStatus, delivery_record, now_ms, outcome_record
from channels.idempotency import DeliveryLedger
from channels.messages import build_message
from channels.policy import ContactPolicy, Verdict
from channels.resilience import ChannelPool, DeliveryOutcome, until_redis_answers
from channels.schedule import Schedule
from channels.settings import DispatchSettings
from core.config import Config
from monitoring.metrics import DELIVERIES, DELIVERIES_RESENT, REDIS_ERRORS
from stream import topics

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def send(self, topic: str, key: str | None, value: dict[str, Any]) -> None: ...
    async def flush(self) -> None: ...


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
    async def accept(self, action: Action) -> None:
        now = now_ms()
        due = decision.queue_at(action, now)
        if due is None:
            return
        if await self.ledger.seen(action.action_id):
            return  # redelivered after it was handled
        if action.status == "send":
            await self.schedule.add(action, due)
            return
        if await self.schedule.add(action, due):
            reason = f"quiet hours: held until {due}"
            await self._record(action, "deferred_quiet_hours", reason=reason, deliver_at=due)

    # --- the loop over due entries ---------------------------------------------
    async def tick(self) -> int:
        """Start delivering what is due; returns how many entries were taken."""
        if self._closing:
            return 0
        room = self.settings.max_inflight - len(self._held)
        entries = await self.schedule.pop_due(now_ms(), room)
        # An entry already held here came back because a renewal failed: it is running.
        entries = [e for e in entries if e.action_id not in self._held]
        if not entries:
            return 0
        if self._closing:  # shutdown began while they were being taken
            await self._hand_back([e.action_id for e in entries])
            return 0
        self._held.update(e.action_id for e in entries)
        per_customer: dict[str, list[Action]] = defaultdict(list)
        for entry in entries:
            per_customer[entry.customer_id].append(entry)
        for group in per_customer.values():
            task = asyncio.create_task(self._run_group(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(entries)

    @property
    def inflight(self) -> int:
        return len(self._held)

    async def _run_group(self, group: list[Action]) -> None:
        cfg = self.config()
        group.sort(key=lambda a: -decision.priority(cfg, a))  # the winner goes first
        for i, action in enumerate(group):
            if self._closing:  # not started: another dispatcher takes them now
                await self._hand_back([a.action_id for a in group[i:]])
                return
            try:
                await self.handle(action, cfg)
            except (redis.RedisError, OSError) as exc:  # the lease brings the entry back
                REDIS_ERRORS.labels("delivery").inc()
                log.warning("delivering action %s: redis unavailable (%s)", action.action_id, exc)
            except Exception:  # a bug: log with context; the lease brings the entry back
                log.exception("delivering action %s failed", action.action_id)
            # Cancelled (shutdown gave up waiting) skips this: ``shutdown`` hands it back.
            self._held.discard(action.action_id)

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
    async def handle(self, action: Action, cfg: Config) -> None:
        action_id = action.action_id
        found = await self.ledger.check(action_id, self.owner, now_ms())
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

        contact = await self.contacts.get(action.customer_id)
        ruled = decision.screen(action, cfg, contact)
        capped = decision.capped(cfg, action)
        if ruled is None:
            verdict = await self._admit(action, cfg) if capped else decision.UNCAPPED
            ruled = decision.after_caps(action, verdict)
        if ruled.status == "deferred_frequency_cap":
            assert ruled.deliver_at is not None
            await self.schedule.reschedule(action, ruled.deliver_at)
            await self._record(
                action, ruled.status, reason=ruled.reason, deliver_at=ruled.deliver_at
            )
            return
        if ruled.status != "send":
            await self._record(action, ruled.status, reason=ruled.reason)
            await self._finish(action_id)
            return
        await self._send(action, cfg, contact, capped)

    async def _admit(self, action: Action, cfg: Config) -> Verdict:
        """Ask the caps and priority, reserving the action's place if it may go out."""
        return await self.policy.admit(
            cfg.policy,
            customer_id=action.customer_id,
            action_id=action.action_id,
            channel=action.channel,
            trigger=action.trigger,
            priority=decision.priority(cfg, action),
            now=now_ms(),
        )

    async def _send(self, action: Action, cfg: Config, contact: Contact, capped: bool) -> None:
        action_id = action.action_id
        channel = self.settings.channel_override or action.channel
        template = decision.template(cfg, action)
        msg = build_message(action, template, contact, channel, cfg.policy.default_timezone)
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
                    customer_id=action.customer_id,
                    action_id=action_id,
                    channel=action.channel,
                    trigger=action.trigger,
                    priority=decision.priority(cfg, action),
                ),
            )
        if result.outcome == "dead" and await self._later(action, result, attempt.started):
            return
        await until_redis_answers("ledger", lambda: self.ledger.sent(action_id, record))
        await self._publish(record)
        await self._finish(action_id)

    async def _later(self, action: Action, result: DeliveryOutcome, tried: bool) -> bool:
        """A provider that is down gets the message later, not never (``decision.next_round``).

        Recorded as ``retrying`` with its ``deliver_at``; False when it is given up.
        """
        retry_at = decision.next_round(
            action,
            now_ms(),
            cooldown_s=self.settings.circuit_cooldown_s,
            give_up_after_s=self.settings.give_up_after_s,
        )
        if retry_at is None:
            return False
        action_id = action.action_id
        if tried and "timed out" in (result.error or ""):  # it may have arrived: flag the next
            await until_redis_answers(
                "ledger", lambda: self.ledger.abandon([action_id], self.owner)
            )
        elif tried:  # the provider refused every attempt: the next one is a first send
            await until_redis_answers("ledger", lambda: self.ledger.clear(action_id))
        later = replace(action, redeliveries=action.redeliveries + 1)
        await until_redis_answers("schedule", lambda: self.schedule.reschedule(later, retry_at))
        reason = (
            f"provider unavailable ({result.error}); "
            f"delivery {action.redeliveries + 2} at {retry_at}"
        )
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

    async def _record(self, action: Action, outcome: DeliveryStatus, **fields: Any) -> None:
        record = delivery_record(action, outcome, **fields)
        DELIVERIES.labels(channel=record["channel"], outcome=outcome).inc()
        await self._publish(record)

    async def _publish(self, record: dict[str, Any]) -> None:
        await self.output.send(topics.DELIVERIES, record.get("action_id"), record)
        await self.output.flush()

    async def _finish(self, action_id: str) -> None:
        await until_redis_answers("ledger", lambda: self.ledger.done(action_id))
        await until_redis_answers("schedule", lambda: self.schedule.complete(action_id))
