"""The per-call context a trigger writes its results into."""

from __future__ import annotations

from typing import Any

from core import attribution, policy, segments
from core.config import Config, TriggerConfig
from core.ids import action_id
from core.model import CustomerState, Decision, Stage, StageChange, Status, Step, TimerChange
from core.variants import assigned

_ELIGIBLE: frozenset[Status] = frozenset({"send", "shadow", "held_out", "deferred_quiet_hours"})


class Ctx(Step):
    """The ``Step`` one core call is building, with the clock and config it runs under.

    A subclass rather than a holder of a ``Step``: one object per call instead of
    two, on a path that runs for every event.
    """

    __slots__ = ("cfg", "now")

    def __init__(self, state: CustomerState, now: int, cfg: Config) -> None:
        self.state = state
        self.now = now
        self.cfg = cfg
        self.decisions = []
        self.timers = []
        self.stage_changes = []
        self.conversions = []
        self.merges = []
        self.duplicate = False
        self.late = False
        self.segment_changes = []

    def set_timer(self, kind: str, due: int) -> None:
        self.state.timers[kind] = due
        self.timers.append(TimerChange(self.state.customer_id, kind, due))

    def cancel_timer(self, kind: str) -> None:
        if self.state.timers.pop(kind, None) is not None:
            self.timers.append(TimerChange(self.state.customer_id, kind, None))

    def stage(self, to_stage: Stage, event_id: str | None, at: int) -> None:
        state = self.state
        if to_stage != state.stage:
            self.stage_changes.append(
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
    ) -> Decision | None:
        """Record a decision; its status comes from the contact policy known to the core.

        A customer outside the trigger's ``audience`` gets none (None is returned).
        """
        state, now = self.state, self.now
        if tcfg.audience and not segments.bound(self.cfg).admits(tcfg.audience, state, now):
            return None
        customer_id = state.customer_id
        # With variants, the hooks already run under the customer's variant (core.hooks):
        # its channel and other settings are in tcfg; here the decision records its name.
        variants = tcfg.variants
        variant, variant_share = None, 0.0
        chan = channel or tcfg.channel
        if variants:
            variant, variant_share = assigned(state, trigger, variants)
            chan = channel or variants[variant].overrides.get("channel", chan)
        status, why = policy.status_for(state, trigger, tcfg, chan, now, self.cfg)
        if status == "deferred_quiet_hours":
            deliver_at = policy.quiet_hours_end(state, now, self.cfg)
            payload = {**payload, "deliver_at": deliver_at}
            expires_at = payload.get("expires_at")
            if expires_at is not None and deliver_at is not None and expires_at <= deliver_at:
                status, why = "suppressed_quiet_hours", "offer expires before quiet hours end"
        if status in _ELIGIBLE:
            state.marks[trigger] = now  # cooldowns count from the last eligible decision
            if variant is not None:
                state.variants[trigger] = [variant, variant_share]  # kept if weights move
        decision = Decision(
            action_id(trigger, customer_id, discriminator),
            trigger,
            customer_id,
            chan,
            now,  # decided_at
            status,
            f"{reason}; {why}" if why else reason,
            payload,
            sources,
            cause_ts,
            variant,
            variant_share,
        )
        self.decisions.append(decision)
        attribution.touched(state, decision)
        return decision
