"""The journey stage machine.

Rules (thresholds in ``journey:`` of the config):
- ``new -> awareness`` on any activity; ``interest`` on a product view or search;
  ``consideration`` on add_to_cart or checkout_started. Before a purchase a
  customer only moves forward.
- ``purchase`` on order_placed; ``loyalty`` once ``loyalty_orders`` orders fall
  within ``loyalty_window``.
- A purchaser with no activity for ``at_risk_after`` becomes ``at_risk``, and
  ``churned`` after ``churned_after``: a timer (kind ``journey``) kept in state,
  fired on the clock, not on the next event.
- Any activity of an ``at_risk`` or ``churned`` customer brings them back to
  ``purchase`` (or ``loyalty`` if they still qualify), unless the event is older
  than the newest activity already known (a late straggler is not a return).
- Out-of-order events give the same stage: the funnel only moves forward and
  purchaser stages depend on the orders, not on their arrival order. Late
  events (older than ``engine.late_grace``) still move the stage; they only
  skip the windows (see ``core.facts``).
"""

from __future__ import annotations

from core.config import JourneyConfig
from core.context import Ctx
from core.facts import ACTIVITY, orders_within
from core.model import STAGE_RANK, Event, Stage

TIMER = "journey"
_FUNNEL: dict[str, Stage] = {
    "product_view": "interest",
    "search": "interest",
    "add_to_cart": "consideration",
    "checkout_started": "consideration",
}
_PURCHASERS = frozenset({"purchase", "loyalty", "at_risk", "churned"})


def _purchaser_stage(ctx: Ctx, now: int) -> Stage:
    journey = ctx.cfg.journey
    loyal = orders_within(ctx.state, now, journey.loyalty_window) >= journey.loyalty_orders
    return "loyalty" if loyal else "purchase"


def on_event(ctx: Ctx, ev: Event) -> None:
    etype = ev.type
    if etype not in ACTIVITY:
        return
    state = ctx.state
    stage = state.stage
    if etype == "order_placed" or stage in _PURCHASERS:
        # Only news brings a customer back: an old event (already older than the newest
        # activity we knew when they went quiet) does not.
        returning = stage in ("at_risk", "churned") and ev.ts >= state.last_active
        if etype == "order_placed" or returning:  # loyalty changes only with orders
            ctx.stage(_purchaser_stage(ctx, ev.ts), ev.event_id, ev.ts)
        # A pending deadline re-arms itself when it pops; only a return needs an earlier one.
        if returning or (TIMER not in state.timers and state.stage != "churned"):
            ctx.set_timer(TIMER, state.last_active + ctx.cfg.journey.at_risk_after)
        return
    target = _FUNNEL.get(etype, "awareness")
    if STAGE_RANK[target] > STAGE_RANK[stage]:
        ctx.stage(target, ev.event_id, ev.ts)


def on_timer(ctx: Ctx, kind: str, due: int, journey: JourneyConfig) -> None:
    """Inactivity deadline: purchasers go at_risk, at_risk customers churn."""
    state = ctx.state
    if state.stage in ("purchase", "loyalty"):
        deadline = state.last_active + journey.at_risk_after
        if deadline > due:  # active since the timer was set: push the deadline back
            ctx.set_timer(TIMER, deadline)
            return
        ctx.stage("at_risk", None, due)
        ctx.set_timer(TIMER, state.last_active + journey.churned_after)
    elif state.stage == "at_risk":
        deadline = state.last_active + journey.churned_after
        if deadline > due:
            ctx.set_timer(TIMER, deadline)
            return
        ctx.stage("churned", None, due)
