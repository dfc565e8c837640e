"""Abandoned cart: items in the cart and no order within ``delay`` of the last cart change.

At most one decision per cart (a cart starts when an empty cart gets an item),
an optional second reminder ``reminder_delay`` after the first, and carts
below ``min_cart_value`` are left alone. Exit: ``order_placed`` or an emptied
cart cancels the pending deadline at once. An anonymous visitor's cart adopted
at login (``core.identity``) gets its deadline as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import recommend
from core.config import TriggerConfig, duration
from core.context import Ctx
from core.durations import MINUTE, format_duration, iso
from core.facts import cart_value
from core.model import VIEW_CATEGORY, VIEW_PRODUCT, Event
from core.trigger import Merge, TriggerDoc, TriggerSpec

NAME = "abandoned_cart"
FIRST, REMINDER = "abandoned_cart", "abandoned_cart_reminder"  # timer kinds
_CART = "abandoned_cart.cart"  # the cart id whose first message was decided


@dataclass(frozen=True, slots=True)
class AbandonedCartConfig(TriggerConfig):
    delay: int = duration(30 * MINUTE)
    min_cart_value: float = 0.0
    reminder_delay: int = duration(0)  # 0 = no second reminder; else after the first
    template: str = "You left {item_count} item(s) worth {cart_value} {currency} in your cart"


def on_event(ctx: Ctx, ev: Event, cfg: AbandonedCartConfig, late: bool) -> None:
    state = ctx.state
    if ev.type == "order_placed" or (not state.cart and not state.checkout_value):
        ctx.cancel_timer(FIRST)
        ctx.cancel_timer(REMINDER)
        return
    if state.marks.get(_CART) == state.cart_id:
        return  # this cart already had its reminder
    if FIRST not in state.timers:  # a later cart change re-arms it when it pops
        ctx.set_timer(FIRST, state.cart_at + cfg.delay)


def on_merge(ctx: Ctx, merge: Merge, cfg: AbandonedCartConfig) -> None:
    """An adopted anonymous cart gets its deadline, as if its last change happened here."""
    if merge.adopted_cart and FIRST not in ctx.state.timers:
        ctx.set_timer(FIRST, ctx.state.cart_at + cfg.delay)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: AbandonedCartConfig) -> None:
    state = ctx.state
    if kind == FIRST and state.cart_at + cfg.delay > due:  # the cart changed since: wait on
        ctx.set_timer(FIRST, state.cart_at + cfg.delay)
        return
    value = cart_value(state)
    if (not state.cart and not state.checkout_value) or value < cfg.min_cart_value:
        return
    step = 1 if kind == FIRST else 2
    if step == 1:
        state.marks[_CART] = state.cart_id
        if cfg.reminder_delay:
            ctx.set_timer(REMINDER, due + cfg.reminder_delay)
    items = [
        {"product_id": pid, "quantity": qty, "price": price}
        for pid, (qty, price) in state.cart.items()
    ]
    payload = {
        "cart_id": state.cart_id,
        "step": step,
        "items": items,
        "item_count": sum(int(qty) for qty, _ in state.cart.values()),
        "cart_value": value,
        "currency": state.currency or "",
    }
    if ctx.cfg.recommend.enabled:
        in_cart = list(state.cart)[::-1]  # newest first
        categories = [v[VIEW_CATEGORY] for v in state.views if v[VIEW_PRODUCT] in state.cart]
        payload["recommended"] = recommend.for_payload(ctx, in_cart, (), categories)
    ctx.decide(
        NAME,
        cfg,
        (state.cart_id, step),
        reason=f"cart {state.cart_id} worth {value} idle since {iso(state.cart_at)}, no order "
        f"within {format_duration(cfg.delay)}" + (" (reminder)" if step == 2 else ""),
        payload=payload,
        sources=tuple(state.cart_events),
        cause_ts=due,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=AbandonedCartConfig,
    template_vars=frozenset(
        {"cart_value", "currency", "item_count", "items", "step", "recommended"}
    ),
    events=frozenset({"add_to_cart", "remove_from_cart", "checkout_started", "order_placed"}),
    on_event=on_event,
    timers=frozenset({FIRST, REMINDER}),
    on_timer=on_timer,
    on_merge=on_merge,
    doc=TriggerDoc(
        fires_when="cart has items and no order within `delay` of the last cart change",
        key_parameters=("delay", "min_cart_value", "reminder_delay"),
        exits="an order or an emptied cart cancels; at most once per cart (+ optional reminder)",
    ),
)
