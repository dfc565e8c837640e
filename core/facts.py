"""Keep the customer's facts up to date from one event: cart, orders, views, counts, consent."""

from __future__ import annotations

from core import windows
from core.config import EngineConfig
from core.ids import event_digest
from core.model import CustomerState, Event

# Counter names in ``CustomerState.counts``: short, since every customer stores them.
COUNTER_OF = {
    "page_view": "view",
    "product_view": "view",
    "search": "search",
    "add_to_cart": "cart",
    "checkout_started": "cart",
    "session_start": "session",
    "app_open": "session",
    "email_open": "engage",
    "email_click": "engage",
    "push_open": "engage",
    "sms_click": "engage",
    "in_app_click": "engage",
    "review": "engage",
    "nps": "engage",
}
# Events a customer does (as opposed to order follow-ups and unsubscribes).
ACTIVITY = frozenset(COUNTER_OF) | {"remove_from_cart", "order_placed", "subscribe"}
_MAX_CART_EVENTS = 10
_MAX_ORDERS = 10


def is_duplicate(state: CustomerState, ev: Event, cfg: EngineConfig) -> bool:
    """True if ``ev.event_id`` was seen within the horizon; otherwise remember it."""
    digest = event_digest(ev.event_id)
    seen = state.seen
    for entry in seen:
        if entry[0] == digest:
            return True
    seen.append([digest, ev.ts])
    horizon = max(state.max_ts, ev.ts) - cfg.dedupe_horizon
    while seen and (len(seen) > cfg.dedupe_size or seen[0][1] < horizon):
        seen.pop(0)
    return False


def cart_value(state: CustomerState) -> float:
    value = sum(qty * price for qty, price in state.cart.values())
    return round(max(value, state.checkout_value), 2)


def apply(state: CustomerState, ev: Event, cfg: EngineConfig, late: bool) -> None:
    etype, ts = ev.type, ev.ts
    if ts > state.max_ts:
        state.max_ts = ts
    if not state.first_seen:
        state.first_seen = ts
    if etype in ACTIVITY and ts > state.last_active:
        state.last_active = ts
    counter = COUNTER_OF.get(etype)
    if counter is not None and not late:  # late events keep facts but leave windows alone
        now = state.max_ts
        windows.add(state.counts.setdefault(counter, []), ts, now)
        windows.add(state.counts.setdefault("activity", []), ts, now)

    if etype == "product_view":
        views = state.views
        views.append([ts, ev.product_id, ev.category, ev.event_id])
        if len(views) > cfg.recent_views:
            del views[0]
    elif etype == "add_to_cart":
        if not state.cart and not state.checkout_value:
            state.cart_id += 1
            state.cart_events.clear()
        line = state.cart.get(ev.product_id)  # type: ignore[arg-type]
        qty = ev.quantity or 1
        if line is None:
            state.cart[ev.product_id] = [qty, ev.price or 0.0]  # type: ignore[index]
        else:
            line[0] += qty
            if ev.price is not None:
                line[1] = ev.price
        _cart_touched(state, ev)
    elif etype == "remove_from_cart":
        line = state.cart.get(ev.product_id)  # type: ignore[arg-type]
        if line is not None:
            if ev.quantity is None or ev.quantity >= line[0]:
                del state.cart[ev.product_id]  # type: ignore[arg-type]
            else:
                line[0] -= ev.quantity
        if not state.cart:
            state.checkout_value = 0.0
        else:
            _cart_touched(state, ev)
    elif etype == "checkout_started":
        if not state.cart and not state.checkout_value:
            state.cart_id += 1
            state.cart_events.clear()
        state.checkouts += 1
        if ev.cart_value is not None:
            state.checkout_value = ev.cart_value
        _cart_touched(state, ev)
    elif etype == "order_placed":
        orders = state.orders
        orders.append([ts, ev.total or 0.0, ev.order_id])
        orders.sort(key=lambda o: o[0])
        if len(orders) > _MAX_ORDERS:
            del orders[0]
        state.order_count += 1
        state.revenue = round(state.revenue + (ev.total or 0.0), 2)
        state.cart.clear()
        state.checkout_value = 0.0
        state.checkouts = 0
    elif etype == "unsubscribe":
        if ev.channel not in state.optouts:
            state.optouts.append(ev.channel)  # type: ignore[arg-type]
    elif etype == "subscribe":
        if ev.channel == "all":
            state.optouts.clear()
        else:
            state.optouts[:] = [c for c in state.optouts if c not in (ev.channel, "all")]
    if ev.currency:
        state.currency = ev.currency


def _cart_touched(state: CustomerState, ev: Event) -> None:
    if ev.ts > state.cart_at:
        state.cart_at = ev.ts
    events = state.cart_events
    events.append(ev.event_id)
    if len(events) > _MAX_CART_EVENTS:
        del events[0]


def orders_within(state: CustomerState, now: int, window: int) -> int:
    return sum(1 for order in state.orders if order[0] > now - window)
