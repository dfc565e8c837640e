"""An ``actions`` record as the dispatcher sees it: parsed once, at the edge, into ``Action``.

The worker writes these records (``core.model.Decision.to_record``, contract in
``docs/CONTRACT.md``). The dispatcher parses each one where it enters, from Kafka
(``agents/dispatcher.py``) and from its Redis schedule (``channels/schedule.py``);
everything in between works on the frozen record, never on the JSON. A record that
cannot be an action (not JSON, not an object, a required field missing or of the wrong
type, an unknown status) becomes a ``BadAction`` saying why, and is skipped.

The schedule stores ``Action.to_json()``: the contract's fields plus ``redeliveries``,
the dispatcher's own count of rounds already tried for a provider that was down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import orjson

ActionStatus = Literal[
    "send",
    "held_out",
    "suppressed_consent",
    "suppressed_frequency_cap",
    "suppressed_cooldown",
    "deferred_quiet_hours",
    "disabled",
    "shadow",
    "suppressed_quiet_hours",
]
ACTION_STATUSES: frozenset[str] = frozenset(get_args(ActionStatus))


@dataclass(frozen=True, slots=True)
class Action:
    """One decision of the engine, as read from ``actions`` (field names as in the contract)."""

    action_id: str
    customer_id: str
    trigger: str
    channel: str
    status: ActionStatus
    decided_at: int = 0  # epoch ms; 0: not given
    reason: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    source_event_ids: tuple[str, ...] = ()
    redeliveries: int = 0  # rounds already tried for a provider that was down
    variant: str = ""  # the trigger's variant (core.variants): its template, if it has one

    @property
    def expires_at(self) -> int | float | None:
        """An offer's end (``payload.expires_at``, epoch ms); None when it has none."""
        return _number(self.payload.get("expires_at"))

    @property
    def deliver_at(self) -> int | None:
        """When a ``deferred_quiet_hours`` action may go out (``payload.deliver_at``)."""
        value = _number(self.payload.get("deliver_at"))
        return None if value is None else int(value)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "action_id": self.action_id,
            "trigger": self.trigger,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "decided_at": self.decided_at,
            "status": self.status,
            "reason": self.reason,
            "payload": dict(self.payload),
            "source_event_ids": list(self.source_event_ids),
        }
        if self.redeliveries:
            record["redeliveries"] = self.redeliveries
        if self.variant:
            record["variant"] = self.variant
        return record

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_record())


@dataclass(frozen=True, slots=True)
class BadAction:
    """A record that is not an action, and why."""

    reason: str


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(record: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = record.get(name)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise ValueError(f"field {name!r} must be a non-empty string, got {value!r}")


def action_from_record(record: Any) -> Action | BadAction:
    """The ``Action`` of a decoded ``actions`` record, or why it is not one."""
    if not isinstance(record, Mapping):
        return BadAction(f"expected a JSON object, got {type(record).__name__}")
    try:
        status = _text(record, "status")
        if status not in ACTION_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        payload = record.get("payload") or {}
        if not isinstance(payload, Mapping):
            raise ValueError(f"field 'payload' must be an object, got {payload!r}")
        decided_at = _number(record.get("decided_at")) or 0
        redeliveries = _number(record.get("redeliveries")) or 0
        sources = record.get("source_event_ids") or ()
        return Action(
            action_id=_text(record, "action_id"),
            customer_id=_text(record, "customer_id"),
            trigger=_text(record, "trigger"),
            channel=_text(record, "channel"),
            status=cast(ActionStatus, status),
            decided_at=int(decided_at),
            reason=_text(record, "reason", required=False),
            payload=payload,
            source_event_ids=tuple(str(s) for s in sources) if isinstance(sources, list) else (),
            redeliveries=int(redeliveries),
            variant=_text(record, "variant", required=False),
        )
    except ValueError as exc:
        return BadAction(str(exc))


def parse_action(raw: bytes | None) -> Action | BadAction:
    """The ``Action`` in one record's bytes (from Kafka or the schedule), or why not."""
    if not raw:
        return BadAction("empty record")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadAction(f"not JSON: {exc}")
    return action_from_record(record)
