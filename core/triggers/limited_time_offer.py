"""Limited-time offer: high intent in the session earns a discount code that expires.

Fires in the same call as the qualifying event (no timer) when either
- a product view completes ``min_views`` views of one product within ``window``, or
- a ``checkout_started`` is the ``checkout_attempts``-th since the last order.
Each burst or checkout run fires once; the decision carries a unique ``code``
(:func:`core.ids.offer_code`) and ``expires_at`` = decided_at + ``valid_for``.
The cooldown (policy, via marks) keeps offers rare. Late events never fire it:
intent that old is no longer in session.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import AT_LEAST_ONE, PERCENT, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, HOUR, MINUTE, format_duration, iso
from core.facts import cart_value, view_burst
from core.ids import offer_code
from core.model import LINE_PRICE, VIEW_EVENT, VIEW_PRODUCT, VIEW_TS, Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "limited_time_offer"


@dataclass(frozen=True, slots=True)
class LimitedTimeOfferConfig(TriggerConfig):
    min_views: int = setting(3, limit=AT_LEAST_ONE)  # views of one product within window
    window: int = duration(10 * MINUTE)
    checkout_attempts: int = setting(2, limit=AT_LEAST_ONE)  # checkouts without an order
    valid_for: int = duration(2 * HOUR)
    discount_percent: int = setting(10, limit=PERCENT)
    cooldown: int = duration(7 * DAY)
    priority: int = 80
    template: str = "{discount_percent}% off {product_id} with code {code}, until {expires_at}"


def on_event(ctx: Ctx, ev: Event, cfg: LimitedTimeOfferConfig, late: bool) -> None:
    if late:
        return
    state = ctx.state
    if ev.type == "product_view":
        if not view_burst(state, VIEW_PRODUCT, ev.product_id, ev.ts, cfg.window, cfg.min_views):
            return
        product_id = ev.product_id
        sources = tuple(
            v[VIEW_EVENT]
            for v in state.views
            if v[VIEW_PRODUCT] == product_id and -cfg.window <= v[VIEW_TS] - ev.ts <= cfg.window
        )
        why = f"{len(sources)} views of product {product_id} within {format_duration(cfg.window)}"
    else:
        if state.checkouts != cfg.checkout_attempts:
            return
        product_id = max(state.cart, key=lambda p: state.cart[p][LINE_PRICE], default=None)
        sources = tuple(state.cart_events)
        why = (
            f"{state.checkouts} checkouts started without an order (cart worth {cart_value(state)})"
        )
    expires_at = ctx.now + cfg.valid_for
    code = offer_code(NAME, state.customer_id, ev.event_id)
    ctx.decide(
        NAME,
        cfg,
        ev.event_id,
        reason=f"{why}; offer {code} until {iso(expires_at)}",
        payload={
            "product_id": product_id,
            "code": code,
            "expires_at": expires_at,
            "discount_percent": cfg.discount_percent,
            "reason": why,
        },
        sources=sources,
        cause_ts=ev.ts,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=LimitedTimeOfferConfig,
    template_vars=frozenset({"product_id", "code", "expires_at", "discount_percent", "reason"}),
    events=frozenset({"product_view", "checkout_started"}),
    on_event=on_event,
    doc=TriggerDoc(
        fires_when="`min_views` views of one product within `window`, or `checkout_attempts` "
        "checkouts without an order: fires on the qualifying event, with a unique code and "
        "`expires_at`",
        key_parameters=("min_views", "window", "checkout_attempts", "valid_for", "cooldown"),
        exits="once per burst or checkout run; late events never fire it",
    ),
)
