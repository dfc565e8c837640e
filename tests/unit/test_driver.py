"""The event-time driver (``core.driver``): timer order, stale timers, the clock.

Replay and the trigger tests run the core through this driver, and the live worker
fires its timers with ``Timers.fire``; these tests pin what all of them rely on.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count
from typing import Any

from core import engine
from core.config import Config
from core.driver import Driver, Outputs, Timers
from core.durations import HOUR, MINUTE
from core.model import CustomerState, Event, Step, TimerChange

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z: outside the default quiet hours
DELAY = 30 * MINUTE  # the abandoned cart's default delay
_ids = count(1)


def carts_only() -> Config:
    """The defaults with only ``abandoned_cart`` on: one timer kind, one decision per cart."""
    base = Config()
    triggers = {
        name: replace(tcfg, enabled=name == "abandoned_cart")
        for name, tcfg in base.triggers.items()
    }
    return Config(triggers=triggers)


CFG = carts_only()


def ev(etype: str, ts: int, cid: str = "c1", **fields: Any) -> Event:
    if etype == "add_to_cart":
        fields = {"product_id": "p1", "quantity": 1, "price": 20.0, **fields}
    if etype == "order_placed":
        fields = {"order_id": f"o{next(_ids)}", "total": 20.0, **fields}
    return Event(f"e{next(_ids)}", etype, cid, ts, **fields)


def driven(*events: Event) -> tuple[Driver, Outputs]:
    outputs = Outputs()
    driver = Driver(CFG, outputs)
    for e in events:
        driver.send(e)
    return driver, outputs


def test_due_timers_fire_in_due_order_each_at_its_own_time() -> None:
    driver, out = driven(
        ev("add_to_cart", T0 + 5 * MINUTE, "a"),
        ev("add_to_cart", T0, "b"),  # events in file order; their deadlines in due order
        ev("add_to_cart", T0 + 2 * MINUTE, "c"),
    )
    assert out.decisions == []
    assert driver.advance(T0 + HOUR) == 3
    assert [(d.customer_id, d.decided_at) for d in out.decisions] == [
        ("b", T0 + DELAY),
        ("c", T0 + 2 * MINUTE + DELAY),
        ("a", T0 + 5 * MINUTE + DELAY),
    ]


def test_an_event_first_fires_every_timer_due_by_its_time() -> None:
    _, out = driven(
        ev("add_to_cart", T0, "a"),
        ev("add_to_cart", T0 + MINUTE, "b"),
        ev("page_view", T0 + DELAY, "z"),  # exactly a's deadline: a's fires, b's not yet
    )
    assert [d.customer_id for d in out.decisions] == ["a"]


def test_a_timer_due_at_an_events_time_fires_before_that_event() -> None:
    _, out = driven(ev("add_to_cart", T0), ev("order_placed", T0 + DELAY))
    assert [d.trigger for d in out.decisions] == ["abandoned_cart"]
    assert [c.trigger for c in out.conversions] == ["abandoned_cart"]  # the order, after it


def test_a_cancelled_timer_does_not_fire() -> None:
    driver, out = driven(ev("add_to_cart", T0), ev("order_placed", T0 + DELAY - 1))
    carts = [(due, kind) for due, _, kind in driver.timers.heap if kind == "abandoned_cart"]
    assert carts == [(T0 + DELAY, "abandoned_cart")]  # queued still: the state says cancelled
    assert driver.advance(T0 + HOUR) == 0
    assert out.decisions == [] and driver.timers.next_due() == driver.state("c1").timers["journey"]
    assert [t for t in out.timers if t.kind == "abandoned_cart"] == [
        TimerChange("c1", "abandoned_cart", T0 + DELAY),
        TimerChange("c1", "abandoned_cart", None),
    ]


def test_an_entry_whose_due_the_state_does_not_hold_is_skipped() -> None:
    driver, out = driven(ev("add_to_cart", T0))
    driver.timers.schedule([TimerChange("c1", "abandoned_cart", T0 + MINUTE)])  # superseded
    driver.timers.schedule([TimerChange("c1", "abandoned_cart", T0 + DELAY)])  # a duplicate
    assert driver.advance(T0 + HOUR) == 1
    assert [d.decided_at for d in out.decisions] == [T0 + DELAY]


def test_a_timer_rearmed_by_its_firing_fires_in_the_same_advance() -> None:
    # A later cart change re-arms the deadline when the first one pops (abandoned_cart).
    driver, out = driven(
        ev("add_to_cart", T0), ev("add_to_cart", T0 + 20 * MINUTE, product_id="p2")
    )
    assert driver.advance(T0 + 2 * HOUR) == 2  # the first pop re-arms, the second decides
    assert [d.decided_at for d in out.decisions] == [T0 + 20 * MINUTE + DELAY]


def test_advance_fires_what_is_due_by_then_and_not_after() -> None:
    driver, out = driven(ev("add_to_cart", T0))
    assert driver.advance(T0 + DELAY - 1) == 0
    assert out.decisions == [] and driver.timers.next_due() == T0 + DELAY
    assert driver.advance(T0 + DELAY) == 1  # due at t counts as due by t
    assert driver.advance(T0 + 2 * DELAY) == 0
    assert driver.timers_fired == 1 and driver.timers.next_due() is None


def test_restart_queues_exactly_the_timers_the_states_hold() -> None:
    driver, out = driven(ev("add_to_cart", T0, "a"), ev("add_to_cart", T0, "b"))
    driver.send(ev("order_placed", T0 + MINUTE, "b"))  # cancels b's cart, arms b's journey
    assert len(driver.timers) == 3
    driver.restart()
    journey = driver.state("b").timers["journey"]
    assert sorted(driver.timers.heap) == [
        (T0 + DELAY, "a", "abandoned_cart"),
        (journey, "b", "journey"),
    ]
    driver.advance(T0 + HOUR)
    assert [d.customer_id for d in out.decisions] == ["a"]


def test_profiles_join_the_state_before_the_next_event() -> None:
    from core.model import Profile

    driver, out = driven()
    driver.profile("c1", Profile(consent={"push": False}))
    driver.send(ev("add_to_cart", T0))
    driver.advance(T0 + HOUR)
    assert [d.status for d in out.decisions] == ["suppressed_consent"]


def test_timers_fire_from_a_callers_store_on_a_callers_clock_in_slices() -> None:
    """The live worker's way: states in its store, its wall clock, a slice at a time."""
    store = {cid: CustomerState(cid) for cid in ("a", "b", "c")}
    timers = Timers()
    for i, cid in enumerate(store):
        timers.schedule(engine.on_event(store[cid], ev("add_to_cart", T0 + i, cid), T0, CFG).timers)
    fired: list[tuple[str, str, int, int]] = []

    def record(step: Step, kind: str, due: int) -> None:
        fired.extend((d.customer_id, kind, due, d.decided_at) for d in step.decisions)

    wall = T0 + HOUR
    assert timers.fire(T0 + HOUR, store.__getitem__, CFG, record, now=wall, limit=2) == 2
    assert len(timers) == 1 and timers.next_due() == T0 + 2 + DELAY  # the rest wait
    assert timers.fire(T0 + HOUR, store.__getitem__, CFG, record, now=wall, limit=2) == 1
    assert fired == [
        ("a", "abandoned_cart", T0 + DELAY, wall),
        ("b", "abandoned_cart", T0 + 1 + DELAY, wall),
        ("c", "abandoned_cart", T0 + 2 + DELAY, wall),
    ]


def test_fire_own_fires_one_customers_due_timers_and_leaves_the_rest_queued() -> None:
    """Before a customer's event the worker fires their own due deadlines only: the
    burst of everyone else's waits for its slices, and nothing fires twice."""
    store = {cid: CustomerState(cid) for cid in ("a", "b")}
    timers = Timers()
    for i, cid in enumerate(store):
        timers.schedule(engine.on_event(store[cid], ev("add_to_cart", T0 + i, cid), T0, CFG).timers)
    fired: list[tuple[str, int]] = []

    def record(step: Step, kind: str, due: int) -> None:
        fired.extend((d.customer_id, due) for d in step.decisions)

    wall = T0 + HOUR
    assert timers.fire_own(store["b"], T0 + DELAY, CFG, record, now=wall) == 0  # not due yet
    assert timers.fire_own(store["b"], T0 + HOUR, CFG, record, now=wall) == 1
    assert fired == [("b", T0 + 1 + DELAY)] and store["b"].timers == {}
    assert len(timers) == 2  # b's entry is stale now, a's still waits
    assert timers.fire(T0 + HOUR, store.__getitem__, CFG, record, now=wall) == 1
    assert fired == [("b", T0 + 1 + DELAY), ("a", T0 + DELAY)]
