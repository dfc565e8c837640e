"""Keep the customer's facts up to date from one event: cart, orders, views, counts, consent."""

from __future__ import annotations

from zlib import adler32, crc32

from core import windows
from core.config import EngineConfig
from core.model import (
    LINE_PRICE,
    LINE_QUANTITY,
    ORDER_CLOSED,
    ORDER_ID,
    ORDER_OPEN,
    ORDER_PAID_AT,
    ORDER_PAID_EVENT,
    ORDER_PLACED_AT,
    ORDER_STATUS,
    VIEW_TS,
    CustomerState,
    Event,
    Order,
)

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
_CART_EVENTS = frozenset({"add_to_cart", "remove_from_cart", "checkout_started"})
_ORDER_EVENTS = frozenset({"order_placed", "order_paid", "order_cancelled", "order_refunded"})
_MAX_CART_EVENTS = 10
_MAX_ORDERS = 10


def is_duplicate(state: CustomerState, ev: Event, cfg: EngineConfig) -> bool:
    """True if ``ev.event_id`` was seen within the horizon; otherwise remember it.

    ``state.seen`` maps a 64-bit digest of each id (CRC-32 and Adler-32 side by side,
    a quarter of blake2b's cost) to its event time, oldest first: a dict, so membership
    needs no scan of the customer's ids. A false "duplicate" needs both checksums to
    collide with one of the customer's last ids.
    """
    raw = ev.event_id.encode()
    digest = (crc32(raw) << 32) | adler32(raw)
    seen = state.seen
    if digest in seen:
        return True
    ts = ev.ts
    seen[digest] = ts
    while len(seen) > cfg.dedupe_size:
        del seen[next(iter(seen))]
    horizon = (ts if ts > state.max_ts else state.max_ts) - cfg.dedupe_horizon
    for oldest in seen.values():  # the first value: cheaper than next(iter(...))
        if oldest < horizon:  # forget from the oldest up to the first one within the horizon
            stale = []
            for old, at in seen.items():
                if at >= horizon:
                    break
                stale.append(old)
            for old in stale:
                del seen[old]
        break
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
        buckets = state.counts.get(counter)
        if buckets is None:
            buckets = state.counts[counter] = []
        windows.add(buckets, ts, state.max_ts)
    if etype == "product_view":
        if not late:  # recent views are a window too: a late view is too old to show intent
            views = state.views
            views.append([ts, ev.product_id, ev.category, ev.event_id])  # a View
            if len(views) > cfg.recent_views:
                del views[0]
    elif etype in _CART_EVENTS:
        # Topics are consumed independently, so an order can arrive before the cart
        # events that led to it: a cart change older than the last order was settled by it.
        if not state.orders or ts > state.orders[-1][ORDER_PLACED_AT]:
            _cart_event(state, ev)
    elif etype in _ORDER_EVENTS:
        _order_event(state, ev)
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


def _cart_event(state: CustomerState, ev: Event) -> None:
    etype = ev.type
    if etype == "add_to_cart":
        if not state.cart and not state.checkout_value:
            state.cart_id += 1
            state.cart_events.clear()
        line = state.cart.get(ev.product_id)  # type: ignore[arg-type]
        qty = ev.quantity or 1
        if line is None:
            state.cart[ev.product_id] = [qty, ev.price or 0.0]  # type: ignore[index]
        else:
            line[LINE_QUANTITY] += qty
            if ev.price is not None:
                line[LINE_PRICE] = ev.price
        _cart_touched(state, ev)
    elif etype == "remove_from_cart":
        line = state.cart.get(ev.product_id)  # type: ignore[arg-type]
        if line is not None:
            if ev.quantity is None or ev.quantity >= line[LINE_QUANTITY]:
                del state.cart[ev.product_id]  # type: ignore[arg-type]
            else:
                line[LINE_QUANTITY] -= ev.quantity
        if not state.cart:
            state.checkout_value = 0.0
        else:
            _cart_touched(state, ev)
    else:  # checkout_started
        if not state.cart and not state.checkout_value:
            state.cart_id += 1
            state.cart_events.clear()
        state.checkouts += 1
        if ev.cart_value is not None:
            state.checkout_value = ev.cart_value
        _cart_touched(state, ev)


def _order_event(state: CustomerState, ev: Event) -> None:
    etype, ts = ev.type, ev.ts
    if etype == "order_placed":
        orders = state.orders
        # the fields in order: placed_at, total, order_id, paid_at, status, placed and paid events
        orders.append([ts, ev.total or 0.0, ev.order_id, 0, ORDER_OPEN, ev.event_id, None])
        if len(orders) > 1 and orders[-2][ORDER_PLACED_AT] > ts:
            orders.sort(key=_order_ts)
        if len(orders) > _MAX_ORDERS:
            del orders[0]
        state.order_count += 1
        state.revenue = round(state.revenue + (ev.total or 0.0), 2)
        state.cart.clear()
        state.checkout_value = 0.0
        state.checkouts = 0
    elif etype == "order_paid":
        order = find_order(state, ev.order_id)
        if order is not None and not order[ORDER_PAID_AT]:
            order[ORDER_PAID_AT] = ts
            order[ORDER_PAID_EVENT] = ev.event_id
    elif etype == "order_cancelled" or etype == "order_refunded":
        order = find_order(state, ev.order_id)
        if order is not None:
            order[ORDER_STATUS] = ORDER_CLOSED


def _cart_touched(state: CustomerState, ev: Event) -> None:
    if ev.ts > state.cart_at:
        state.cart_at = ev.ts
    events = state.cart_events
    events.append(ev.event_id)
    if len(events) > _MAX_CART_EVENTS:
        del events[0]


def _order_ts(order: Order) -> int:
    return order[ORDER_PLACED_AT]


def find_order(state: CustomerState, order_id: str | None) -> Order | None:
    """The remembered order ``order_id`` (the last ``_MAX_ORDERS`` are kept), or None."""
    for order in reversed(state.orders):
        if order[ORDER_ID] == order_id:
            return order
    return None


def activity_pair(state: CustomerState, now: int, short: int, long: int) -> tuple[int, int]:
    """Counted activity (all counters) in ``(now - short, now]`` and ``(now - long, now]``,
    to bucket precision, in one pass over the buckets."""
    short_since, long_since = now - short, now - long
    oldest = min(short_since, long_since)
    n_short = n_long = 0
    for buckets in state.counts.values():
        for start, count in reversed(buckets):  # sorted by start: newest first here
            if start < oldest:
                break
            if start >= long_since:
                n_long += count
            if start >= short_since:
                n_short += count
    return n_short, n_long


def orders_within(state: CustomerState, now: int, window: int) -> int:
    return sum(1 for order in state.orders if order[ORDER_PLACED_AT] > now - window)


def view_burst(
    state: CustomerState,
    field: int,
    key: str | None,
    ts: int,
    window: int,
    min_views: int,
    new_only: bool = True,
) -> int:
    """Did the view at ``ts`` complete a burst of ``min_views`` views within ``window``?

    Views count together when they share ``view[field]`` (``VIEW_PRODUCT`` or
    ``VIEW_CATEGORY``) equal to ``key``. Returns the newest view time of the burst if
    the view at ``ts`` completed one that the other views did not already make (so a
    burst fires once, whatever order its views arrive in), else 0. With ``new_only=False``, a view that
    extends a burst counts too. Scans the recent views only.
    """
    views = state.views
    if key is None or len(views) < min_views:  # cheap exits first: most views end here
        return 0
    low, high = ts - window, ts + window
    if ts >= state.max_ts:
        # In order, the common case: no view is newer, so the views of ``key`` since
        # ``low`` all fit in one window and the burst, if any, ends at ``ts``; it is new
        # when the others alone are one view short of one.
        n = 0
        for v in views:  # a loop, not a comprehension: in 3.11 that is a call (~0.4 us)
            if v[field] == key and v[VIEW_TS] >= low:
                n += 1
        return ts if n == min_views or (n > min_views and not new_only) else 0
    times = [v[VIEW_TS] for v in views if v[field] == key and low <= v[VIEW_TS] <= high]
    if len(times) < min_views:
        return 0
    times.sort()
    last = _burst_end(times, window, min_views)
    if not last or not new_only:
        return last
    times.remove(ts)
    return 0 if _burst_end(times, window, min_views) else last


def _burst_end(times: list[int], window: int, min_views: int) -> int:
    """The newest time ending a run of ``min_views`` sorted times spanning <= window, or 0."""
    end = 0
    for i in range(len(times) - min_views + 1):
        if times[i + min_views - 1] - times[i] <= window:
            end = times[i + min_views - 1]
    return end
