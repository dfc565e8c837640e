"""Last-touch conversion attribution, for measuring each trigger's uplift against its holdout.

A decision counts as a touch when the customer was eligible: sent (or deferred,
or shadow) and held out alike, so the two groups are comparable
(intent-to-treat). An ``order_placed`` within the trigger's
``attribution_window`` after the most recent touch converts it, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.model import Conversion, CustomerState, Decision, Event, Group, Status

if TYPE_CHECKING:
    from core.context import Ctx

GROUP_OF: dict[Status, Group] = {
    "send": "sent",
    "deferred_quiet_hours": "sent",
    "held_out": "held_out",
}
_MAX_TOUCHES = 8


def touched(state: CustomerState, decision: Decision) -> None:
    group = GROUP_OF.get(decision.status)
    if group is None:
        return
    touches = state.touches
    touches.append([decision.trigger, decision.decided_at, group, decision.action_id])
    if len(touches) > _MAX_TOUCHES:
        del touches[0]


def on_deal(ctx: Ctx, ev: Event, trigger: str) -> None:
    """A ``deal_won``: the conversion of the most recent ``trigger`` touch (a qualified lead)
    within its window; other triggers' touches are left to orders."""
    state = ctx.state
    tcfg = ctx.cfg.triggers.get(trigger)
    if tcfg is None:
        return
    for i in range(len(state.touches) - 1, -1, -1):
        touched_by, at, group, action_id = state.touches[i]
        if touched_by != trigger or not at <= ev.ts <= at + tcfg.attribution_window:
            continue
        del state.touches[i]
        ctx.conversions.append(
            Conversion(
                trigger, group, action_id, state.customer_id, ev.order_id, ev.total or 0.0, ev.ts
            )
        )
        return


def on_order(ctx: Ctx, ev: Event) -> None:
    state, triggers = ctx.state, ctx.cfg.triggers
    for i in range(len(state.touches) - 1, -1, -1):
        trigger, at, group, action_id = state.touches[i]
        tcfg = triggers.get(trigger)
        if tcfg is None or not at <= ev.ts <= at + tcfg.attribution_window:
            continue
        del state.touches[i]
        ctx.conversions.append(
            Conversion(
                trigger, group, action_id, state.customer_id, ev.order_id, ev.total or 0.0, ev.ts
            )
        )
        return
