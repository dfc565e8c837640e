"""The named fields of the lists inside customer state sit where the changelog has them.

``CustomerState`` keeps orders, views, cart lines, touches and window buckets as small
lists, its wire form (``state/codec.py``): a restarted worker reads what an older one
wrote. Code names their fields (``core.model.ORDER_PAID_AT``...); this pins the
positions those names stand for, so renumbering one fails here, not in production.
"""

from __future__ import annotations

import orjson

from core import engine, windows
from core.config import Config
from core.model import (
    LINE_PRICE,
    LINE_QUANTITY,
    ORDER_CLOSED,
    ORDER_ID,
    ORDER_OPEN,
    ORDER_PAID_AT,
    ORDER_PAID_EVENT,
    ORDER_PLACED_AT,
    ORDER_PLACED_EVENT,
    ORDER_STATUS,
    ORDER_TOTAL,
    VIEW_CATEGORY,
    VIEW_EVENT,
    VIEW_PRODUCT,
    VIEW_TS,
    CustomerState,
    Event,
)
from state import codec

T0 = 1_767_258_000_000


def test_the_state_written_to_the_changelog_keeps_its_shape() -> None:
    state = CustomerState("c1")
    events = [
        Event("v1", "product_view", "c1", T0, "clickstream", product_id="p1", category="shoes"),
        Event("a1", "add_to_cart", "c1", T0 + 1, "clickstream", product_id="p2", price=20.0),
        Event("a2", "add_to_cart", "c1", T0 + 2, "clickstream", product_id="p2", quantity=1),
        Event("o1", "order_placed", "c1", T0 + 3, "orders", order_id="o-1", total=40.0),
        Event("o2", "order_paid", "c1", T0 + 4, "orders", order_id="o-1"),
        Event("o3", "order_placed", "c1", T0 + 5, "orders", order_id="o-2", total=5.0),
        Event("o4", "order_refunded", "c1", T0 + 6, "orders", order_id="o-2"),
        Event("a3", "add_to_cart", "c1", T0 + 7, "clickstream", product_id="p3", price=3.5),
    ]
    for ev in events:
        engine.on_event(state, ev, ev.ts, Config())
    wire = codec.decode(codec.encode(state))

    assert wire.views == [[T0, "p1", "shoes", "v1"]]
    assert wire.orders == [
        [T0 + 3, 40.0, "o-1", T0 + 4, 0, "o1", "o2"],
        [T0 + 5, 5.0, "o-2", 0, 1, "o3", None],
    ]
    assert wire.cart == {"p3": [1, 3.5]}
    assert wire.counts["view"] == [[T0 - T0 % 60_000, 1]]

    (view,) = wire.views
    assert (view[VIEW_TS], view[VIEW_PRODUCT], view[VIEW_CATEGORY], view[VIEW_EVENT]) == (
        T0,
        "p1",
        "shoes",
        "v1",
    )
    paid, refunded = wire.orders
    assert (paid[ORDER_PLACED_AT], paid[ORDER_TOTAL], paid[ORDER_ID]) == (T0 + 3, 40.0, "o-1")
    assert (paid[ORDER_PAID_AT], paid[ORDER_PLACED_EVENT], paid[ORDER_PAID_EVENT]) == (
        T0 + 4,
        "o1",
        "o2",
    )
    assert (paid[ORDER_STATUS], refunded[ORDER_STATUS]) == (ORDER_OPEN, ORDER_CLOSED)
    line = wire.cart["p3"]
    assert (line[LINE_QUANTITY], line[LINE_PRICE]) == (1, 3.5)
    (bucket,) = wire.counts["view"]
    assert (bucket[windows.START], bucket[windows.COUNT]) == (T0 - T0 % 60_000, 1)


def test_what_a_restart_indexes_is_what_the_full_decode_gives() -> None:
    """``codec.index_fields`` reads a stored state's id, stage, timers and audiences
    without building it; it must agree with ``codec.decode``, old records included."""
    state = CustomerState("c1")
    cart = Event("a1", "add_to_cart", "c1", T0, "clickstream", product_id="p2", price=20.0)
    engine.on_event(state, cart, T0, Config())
    state.segments = ["vip", "!lapsed"]
    raw = codec.encode(state)
    full = codec.decode(raw)
    assert full.timers  # the cart's deadline: something to index
    assert codec.index_fields(raw) == (full.customer_id, full.stage, full.timers, full.segments)

    older = orjson.dumps(orjson.loads(raw)[: 1 + codec._FIELDS.index("segments")])
    assert codec.index_fields(older) == ("c1", full.stage, full.timers, [])
