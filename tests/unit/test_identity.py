"""Anonymous history is folded into the customer who logs in, once."""

from __future__ import annotations

from core import engine, identity
from core.config import Config
from core.durations import MINUTE
from core.model import CustomerState, Event
from state import codec

T0 = 1_767_225_600_000
CFG = Config()


def ev(customer: str, etype: str, ts: int, event_id: str, **fields: object) -> Event:
    event = Event(event_id, etype, customer, ts, "clickstream")
    for name, value in fields.items():
        setattr(event, name, value)
    return event


def anonymous_visitor() -> CustomerState:
    anon = engine.new_state("anon-1")
    engine.on_event(anon, ev("anon-1", "product_view", T0, "a1", product_id="p1"), T0, CFG)
    engine.on_event(anon, ev("anon-1", "product_view", T0 + 1000, "a2", product_id="p1"), T0, CFG)
    engine.on_event(
        anon,
        ev("anon-1", "add_to_cart", T0 + 2000, "a3", product_id="p1", price=30.0, quantity=1),
        T0,
        CFG,
    )
    return anon


def test_an_event_with_an_anonymous_id_asks_for_that_history_once() -> None:
    state = engine.new_state("c1")
    first = engine.on_event(state, ev("c1", "page_view", T0, "e1", anonymous_id="anon-1"), T0, CFG)
    again = engine.on_event(
        state, ev("c1", "page_view", T0 + 1, "e2", anonymous_id="anon-1"), T0, CFG
    )
    same = engine.on_event(state, ev("c1", "page_view", T0 + 2, "e3", anonymous_id="c1"), T0, CFG)
    assert first.merges == ["anon-1"]
    assert again.merges == [] and same.merges == []


def test_merge_folds_views_windows_cart_and_stage_and_arms_the_cart_deadline() -> None:
    customer = engine.new_state("c1")
    engine.on_event(customer, ev("c1", "page_view", T0 + 5000, "e1"), T0, CFG)
    anon = codec.decode(codec.encode(anonymous_visitor()))  # as it arrives from the other worker

    step = identity.merge(customer, anon, T0 + 6000, CFG)

    assert customer.first_seen == T0
    assert [v[3] for v in customer.views] == ["a1", "a2"]
    assert sum(c for _, c in customer.counts["view"]) == 3  # 2 product views + 1 page view
    assert customer.cart == {"p1": [1, 30.0]}
    assert [(c.from_stage, c.to_stage) for c in step.stage_changes] == [
        ("awareness", "consideration")
    ]
    due = customer.timers["abandoned_cart"]
    assert due == T0 + 2000 + CFG.triggers["abandoned_cart"].delay
    fired = engine.on_timer(customer, "abandoned_cart", due, due, CFG)
    assert [d.payload["items"] for d in fired.decisions] == [
        [{"product_id": "p1", "quantity": 1, "price": 30.0}]
    ]


def test_merging_the_same_visitor_twice_counts_once() -> None:
    customer = engine.new_state("c1")
    anon = anonymous_visitor()
    identity.merge(customer, anon, T0 + MINUTE, CFG)
    before = codec.encode(customer)
    step = identity.merge(customer, anon, T0 + 2 * MINUTE, CFG)
    assert codec.encode(customer) == before and not step.stage_changes


def test_a_customer_with_a_cart_keeps_their_own() -> None:
    customer = engine.new_state("c1")
    engine.on_event(
        customer,
        ev("c1", "add_to_cart", T0, "e1", product_id="mine", price=1.0, quantity=1),
        T0,
        CFG,
    )
    identity.merge(customer, anonymous_visitor(), T0 + MINUTE, CFG)
    assert list(customer.cart) == ["mine"]
