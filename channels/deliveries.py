"""The ``deliveries`` records the dispatcher writes, and the statuses they may carry.

A record keeps the contract's fields (``action_id, channel, outcome, attempts,
latency_ms, error, at``) and adds ``trigger``, ``customer_id``, ``reason``,
``deliver_at`` (deferrals and later rounds) and ``maybe_resent`` (true when an earlier
dispatcher may have sent the message already; ``reason`` then says so). Outcomes beyond
the contract's four (what a provider did) use the ``actions`` status vocabulary (what
the contact policy did).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from channels.actions import Action

if TYPE_CHECKING:  # resilience imports this module's statuses
    from channels.resilience import DeliveryOutcome

# What the provider did (``channels/resilience.py``): the contract's four.
ProviderOutcome = Literal["delivered", "failed", "retrying", "dead"]
# What the contact policy did instead of sending (``channels/decision.py``), or the
# quiet-hours hold the worker decided.
PolicyOutcome = Literal[
    "disabled",
    "suppressed_consent",
    "suppressed_priority",
    "suppressed_frequency_cap",
    "deferred_quiet_hours",
    "deferred_frequency_cap",
]
DeliveryStatus = Literal[ProviderOutcome, PolicyOutcome]

RESENT_REASON = (
    "possibly sent before: a dispatcher stopped while sending it; sent again with the same "
    "action_id (idempotency key)"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def delivery_record(
    action: Action,
    outcome: DeliveryStatus,
    *,
    channel: str | None = None,
    attempts: int = 0,
    latency_ms: int = 0,
    error: str | None = None,
    reason: str = "",
    deliver_at: int | None = None,
    maybe_resent: bool = False,
    at: int | None = None,
) -> dict[str, Any]:
    """A ``deliveries`` record: the contract's fields first, then the extensions."""
    return {
        "action_id": action.action_id,
        "channel": channel or action.channel,
        "outcome": outcome,
        "attempts": attempts,
        "latency_ms": latency_ms,
        "error": error,
        "at": now_ms() if at is None else at,
        "trigger": action.trigger,
        "customer_id": action.customer_id,
        "reason": reason,
        "deliver_at": deliver_at,
        "maybe_resent": maybe_resent,
    }


def outcome_record(
    action: Action, result: DeliveryOutcome, *, maybe_resent: bool = False
) -> dict[str, Any]:
    """The record of what the provider did (``channels.resilience.deliver``'s outcome)."""
    return delivery_record(
        action,
        result.outcome,
        channel=result.channel,
        attempts=result.attempts,
        latency_ms=result.latency_ms,
        error=result.error,
        reason=RESENT_REASON if maybe_resent else "",
        maybe_resent=maybe_resent,
        at=result.at,
    )
