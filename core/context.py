"""The per-call context a trigger writes its results into."""

from __future__ import annotations

from typing import Any

from core import attribution, policy
from core.config import Config, TriggerConfig
from core.ids import action_id
from core.model import CustomerState, Decision, StageChange, Step, TimerChange


class Ctx:
    """Collects decisions, timer changes and stage changes for one core call."""

    __slots__ = ("cfg", "now", "state", "step")

    def __init__(self, state: CustomerState, now: int, cfg: Config) -> None:
        self.state = state
        self.now = now
        self.cfg = cfg
        self.step = Step(state)

    def set_timer(self, kind: str, due: int) -> None:
        self.state.timers[kind] = due
        self.step.timers.append(TimerChange(self.state.customer_id, kind, due))

    def cancel_timer(self, kind: str) -> None:
        if self.state.timers.pop(kind, None) is not None:
            self.step.timers.append(TimerChange(self.state.customer_id, kind, None))

    def stage(self, to_stage: str, event_id: str | None, at: int) -> None:
        state = self.state
        if to_stage != state.stage:
            self.step.stage_changes.append(
                StageChange(state.customer_id, state.stage, to_stage, at, event_id)
            )
            state.stage = to_stage

    def decide(
        self,
        trigger: str,
        tcfg: TriggerConfig,
        discriminator: object,
        *,
        reason: str,
        payload: dict[str, Any],
        sources: tuple[str, ...],
        cause_ts: int,
        channel: str | None = None,
    ) -> Decision:
        """Record a decision; its status comes from the contact policy known to the core."""
        state = self.state
        chan = channel or tcfg.channel
        status, why = policy.status_for(state, trigger, tcfg, chan, self.now, self.cfg)
        if status == "deferred_quiet_hours":
            deliver_at = policy.quiet_hours_end(state, self.now, self.cfg)
            payload = {**payload, "deliver_at": deliver_at}
            expires_at = payload.get("expires_at")
            if expires_at is not None and deliver_at is not None and expires_at <= deliver_at:
                status, why = "suppressed_quiet_hours", "offer expires before quiet hours end"
        if status in ("send", "shadow", "held_out", "deferred_quiet_hours"):
            state.marks[trigger] = self.now  # cooldowns count from the last eligible decision
        decision = Decision(
            action_id=action_id(trigger, state.customer_id, discriminator),
            trigger=trigger,
            customer_id=state.customer_id,
            channel=chan,
            decided_at=self.now,
            status=status,
            reason=f"{reason}; {why}" if why else reason,
            payload=payload,
            source_event_ids=sources,
            cause_ts=cause_ts,
        )
        self.step.decisions.append(decision)
        attribution.touched(state, decision)
        return decision
