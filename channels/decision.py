"""What the dispatcher does with an action, decided without I/O.

The worker's shape (``core/engine.py``): plain functions over typed records, the config
and the clock; ``channels/dispatch.py`` does the I/O around them (Redis, providers,
``deliveries``). Tested without Redis in ``tests/unit/test_dispatch_decision.py``.

For an action taken from the schedule, in this order:

1. ``screen``: the trigger was switched off since the decision (``disabled``), or the
   customer withdrew consent for the channel (``suppressed_consent``);
2. the frequency caps and priority (``channels/policy.py``): decided and reserved in one
   atomic step in Redis, so two dispatchers cannot both squeeze under a cap; asked only
   when 1 lets the action through and its channel is not cap-exempt (``capped``);
3. ``after_caps``: their verdict becomes ``suppressed_priority``,
   ``suppressed_frequency_cap`` (an offer that expires before the cap frees up),
   ``deferred_frequency_cap`` (until it does), or ``send``.

``decide`` is the three in order for a given verdict. Around a send: ``queue_at`` says
when an action read from ``actions`` is due, ``next_round`` when a provider that is down
gets the message again (or that it is given up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from channels.actions import Action
from channels.contacts import Contact
from channels.policy import Verdict
from core.config import Config

DecisionStatus = Literal[
    "send",
    "disabled",
    "suppressed_consent",
    "suppressed_priority",
    "suppressed_frequency_cap",
    "deferred_frequency_cap",
]
UNCAPPED = Verdict("ok")  # the verdict for a cap-exempt channel
REDELIVER_MAX_S = 900.0  # the longest wait between two rounds for a provider that is down


@dataclass(frozen=True, slots=True)
class DispatchDecision:
    """``send``, or what happens instead and why (``reason`` goes on ``deliveries``).

    ``deliver_at``: when a deferred action is due again (epoch ms).
    """

    status: DecisionStatus
    reason: str = ""
    deliver_at: int | None = None


SEND = DispatchDecision("send")


def priority(cfg: Config, action: Action) -> int:
    """The trigger's priority; a trigger the config no longer has counts as 0."""
    tcfg = cfg.triggers.get(action.trigger)
    return tcfg.priority if tcfg is not None else 0


def template(cfg: Config, action: Action) -> str:
    """The trigger's template, or its variant's when the action names a variant that has one."""
    tcfg = cfg.triggers.get(action.trigger)
    if tcfg is None:
        return ""
    variant = tcfg.variants.get(action.variant) if action.variant else None
    if variant is not None:
        return str(variant.overrides.get("template", tcfg.template))
    return tcfg.template


def capped(cfg: Config, action: Action) -> bool:
    """Does the action's channel count towards the caps (and compete on priority)?"""
    return action.channel not in cfg.policy.cap_exempt_channels


def screen(action: Action, cfg: Config, contact: Contact) -> DispatchDecision | None:
    """Step 1: ``disabled`` or ``suppressed_consent``; None lets the action go on."""
    tcfg = cfg.triggers.get(action.trigger)
    if tcfg is not None and not tcfg.enabled:
        return DispatchDecision("disabled", f"trigger {action.trigger} is disabled")
    if not contact.allows(action.channel):
        return DispatchDecision("suppressed_consent", f"no consent for {action.channel}")
    return None


def after_caps(action: Action, verdict: Verdict) -> DispatchDecision:
    """Step 3: the caps' verdict (``UNCAPPED`` for an exempt channel) as a decision."""
    if verdict.kind == "priority":
        reason = f"{verdict.detail} has higher priority within the priority window"
        return DispatchDecision("suppressed_priority", reason)
    if verdict.kind == "capped":
        free_at, cap = verdict.free_at, verdict.detail
        expires_at = action.expires_at
        if expires_at is not None and expires_at <= free_at:
            reason = (
                f"frequency cap {cap}: the offer expires at {int(expires_at)}, before {free_at}"
            )
            return DispatchDecision("suppressed_frequency_cap", reason)
        reason = f"frequency cap {cap}: deferred until {free_at}"
        return DispatchDecision("deferred_frequency_cap", reason, deliver_at=free_at)
    return SEND


def decide(action: Action, cfg: Config, contact: Contact, verdict: Verdict) -> DispatchDecision:
    """The whole decision, given what the caps answer (ignored for an exempt channel)."""
    return screen(action, cfg, contact) or after_caps(
        action, verdict if capped(cfg, action) else UNCAPPED
    )


def queue_at(action: Action, now: int) -> int | None:
    """When an action read from ``actions`` is due: a ``send`` now, a
    ``deferred_quiet_hours`` at its ``payload.deliver_at``; None for every other status,
    which the worker decided already (held out, suppressed, shadow...)."""
    if action.status == "send":
        return now
    if action.status == "deferred_quiet_hours":
        return action.deliver_at or now
    return None


def next_round(
    action: Action, now: int, *, cooldown_s: float, give_up_after_s: float
) -> int | None:
    """When a provider that is down (retries exhausted, circuit open) gets it again.

    A circuit cooldown, doubling each round, at most ``REDELIVER_MAX_S``; None (give up:
    ``dead``) once that is more than ``give_up_after_s`` after the decision, or at or
    after an offer's ``expires_at``.
    """
    wait_s = min(REDELIVER_MAX_S, cooldown_s * 2**action.redeliveries)
    retry_at = now + int(wait_s * 1000)
    decided = action.decided_at or now
    expires_at = action.expires_at
    if retry_at - decided > give_up_after_s * 1000:
        return None
    if expires_at is not None and expires_at <= retry_at:
        return None
    return retry_at
