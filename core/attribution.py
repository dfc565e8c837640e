"""Last-touch conversion attribution, for measuring each trigger's uplift against its holdout.

A decision counts as a touch when the customer was eligible: sent (or deferred,
or shadow) and held out alike, so the two groups are comparable
(intent-to-treat). An ``order_placed`` within the trigger's
``attribution_window`` after the most recent touch converts it, once.

An order that redeems an offer (``properties.code`` of ``order_placed`` equal to
the ``code`` of a decision's payload, as ``limited_time_offer`` and ``win_back``
make) converts that decision rather than the most recent one, and its conversion
carries the ``discount`` the code took off: ``total`` is what the customer paid,
so ``total * percent / (100 - percent)``. A conversion also carries the
decision's ``variant`` (``core.variants``).
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
    touch = [decision.trigger, decision.decided_at, group, decision.action_id]
    variant, code = decision.variant, decision.payload.get("code")
    if variant is not None or code is not None:
        touch += [variant, decision.variant_share]
        if code is not None:
            touch += [code, decision.payload.get("discount_percent") or 0]
    touches.append(touch)
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
    code = ev.properties.get("code") if ev.properties else None
    chosen = None
    for i in range(len(state.touches) - 1, -1, -1):
        touch = state.touches[i]
        tcfg = triggers.get(touch[0])
        if tcfg is None or not touch[1] <= ev.ts <= touch[1] + tcfg.attribution_window:
            continue
        if chosen is None:
            chosen = i
        if code is None or (len(touch) > 6 and touch[6] == code):
            chosen = i
            break
    if chosen is None:
        return
    touch = state.touches.pop(chosen)
    total = ev.total or 0.0
    discount = 0.0
    if code is not None and len(touch) > 6 and touch[6] == code and 0 < touch[7] < 100:
        discount = round(total * touch[7] / (100 - touch[7]), 2)
    ctx.conversions.append(
        Conversion(
            touch[0],
            touch[2],
            touch[3],
            state.customer_id,
            ev.order_id,
            total,
            ev.ts,
            touch[4] if len(touch) > 4 else None,
            discount,
            touch[5] if len(touch) > 5 else 0.0,
        )
    )
