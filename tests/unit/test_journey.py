"""The journey stage machine, the facts it reads and the bounded windows."""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from core import engine, windows
from core.config import Config, JourneyConfig
from core.driver import Driver, Outputs
from core.durations import DAY, HOUR, MINUTE
from core.facts import COUNTER_OF
from core.model import CustomerState, Event
from state.codec import decode, encode

T0 = 1_767_258_000_000
CFG = Config()


def ev(etype: str, ts: int, eid: str, **fields: object) -> Event:
    if etype == "order_placed":
        fields.setdefault("order_id", f"o-{eid}")
        fields.setdefault("total", 10.0)
    if etype in ("product_view", "add_to_cart"):
        fields.setdefault("product_id", "p1")
    return Event(eid, etype, "c1", ts, **fields)  # type: ignore[arg-type]


def run(events: list[Event], until: int | None = None, cfg: Config = CFG) -> CustomerState:
    """Events in the given order on the event-time driver, then the clock run to ``until``."""
    driver = Driver(cfg, Outputs())
    for e in events:
        driver.send(e)
    if until is not None:
        driver.advance(until)
    return driver.state("c1")


def stages(events: list[Event]) -> list[str]:
    outputs = Outputs()
    driver = Driver(CFG, outputs)
    for e in events:
        driver.send(e)
    return [c.to_stage for c in outputs.stage_changes]


def test_funnel_moves_forward_with_intent() -> None:
    events = [
        ev("page_view", T0, "a"),
        ev("search", T0 + 1, "b"),
        ev("add_to_cart", T0 + 2, "c"),
        ev("order_placed", T0 + 3, "d"),
    ]
    assert stages(events) == ["awareness", "interest", "consideration", "purchase"]


def test_a_first_product_view_skips_straight_to_interest() -> None:
    assert stages([ev("product_view", T0, "a")]) == ["interest"]


def test_before_a_purchase_the_funnel_never_moves_back() -> None:
    events = [ev("add_to_cart", T0, "a"), ev("page_view", T0 + HOUR, "b")]
    assert stages(events) == ["consideration"]


def test_order_follow_ups_and_unsubscribes_are_not_activity() -> None:
    state = run(
        [ev("order_paid", T0, "a", order_id="x"), ev("unsubscribe", T0, "b", channel="sms")]
    )
    assert state.stage == "new" and state.last_active == 0


def test_second_order_within_the_window_makes_a_loyal_customer() -> None:
    state = run([ev("order_placed", T0, "a"), ev("order_placed", T0 + 10 * DAY, "b")])
    assert state.stage == "loyalty"


def test_orders_further_apart_than_the_loyalty_window_do_not() -> None:
    state = run([ev("order_placed", T0, "a"), ev("order_placed", T0 + 91 * DAY, "b")])
    assert state.stage == "purchase"


def test_inactive_purchaser_goes_at_risk_then_churns_on_the_timer() -> None:
    state = run([ev("order_placed", T0, "a")], until=T0 + 30 * DAY - 1)
    assert state.stage == "purchase"
    state = run([ev("order_placed", T0, "a")], until=T0 + 30 * DAY)
    assert state.stage == "at_risk"
    state = run([ev("order_placed", T0, "a")], until=T0 + 90 * DAY)
    assert state.stage == "churned" and "journey" not in state.timers


def test_activity_pushes_the_at_risk_deadline_back() -> None:
    state = run([ev("order_placed", T0, "a"), ev("app_open", T0 + 20 * DAY, "b")], T0 + 49 * DAY)
    assert state.stage == "purchase" and state.timers["journey"] == T0 + 50 * DAY


def test_activity_brings_at_risk_and_churned_customers_back() -> None:
    for quiet in (40 * DAY, 100 * DAY):
        state = run([ev("order_placed", T0, "a")], until=T0 + quiet)
        step = engine.on_event(state, ev("page_view", T0 + quiet, "b"), T0 + quiet, CFG)
        assert [c.to_stage for c in step.stage_changes] == ["purchase"]
        assert state.timers["journey"] == T0 + quiet + 30 * DAY


def test_a_returning_loyal_customer_stays_loyal_while_orders_qualify() -> None:
    cfg = Config(journey=JourneyConfig(at_risk_after=10 * DAY))
    orders = [ev("order_placed", T0, "a"), ev("order_placed", T0 + DAY, "b")]
    state = run(orders, until=T0 + 12 * DAY, cfg=cfg)
    assert state.stage == "at_risk"
    engine.on_event(state, ev("app_open", T0 + 12 * DAY, "c"), T0 + 12 * DAY, cfg)
    assert state.stage == "loyalty"


def test_a_straggler_older_than_the_last_activity_is_not_a_return() -> None:
    state = run([ev("order_placed", T0, "a")], until=T0 + 31 * DAY)
    engine.on_event(state, ev("page_view", T0 - HOUR, "old"), T0 + 31 * DAY, CFG)
    assert state.stage == "at_risk"


def test_late_events_move_the_stage_but_not_the_windows() -> None:
    state = run([ev("page_view", T0 + HOUR, "a")])
    step = engine.on_event(state, ev("add_to_cart", T0, "late"), T0 + HOUR, CFG)
    assert step.late and state.stage == "consideration"
    assert "cart" not in state.counts and state.cart


def test_duplicate_event_is_one_effect() -> None:
    state = run([ev("order_placed", T0, "a")])
    step = engine.on_event(state, ev("order_placed", T0, "a"), T0, CFG)
    assert step.duplicate and state.order_count == 1


def test_dedupe_memory_is_bounded() -> None:
    state = run([ev("page_view", T0 + i, f"e{i}") for i in range(100)])
    assert len(state.seen) == CFG.engine.dedupe_size
    state = run([ev("page_view", T0 + i * HOUR, f"e{i}") for i in range(30)])
    assert len(state.seen) == 25  # a day of hourly events, the one at the horizon included


def test_stage_survives_a_restart() -> None:
    state = decode(encode(run([ev("order_placed", T0, "a")])))
    due = state.timers["journey"]
    engine.on_timer(state, "journey", due, due, CFG)
    assert state.stage == "at_risk"


def activity(state: CustomerState, now: int, window: int) -> int:
    """Counted activity in ``(now - window, now]``, by definition: each counter's window total."""
    return sum(windows.total(buckets, now, window) for buckets in state.counts.values())


_TYPES = ["page_view", "search", "product_view", "add_to_cart", "session_start", "order_placed"]


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(_TYPES), min_size=1, max_size=25),
    offsets=st.lists(st.integers(0, 9 * MINUTE), min_size=25, max_size=25),
    seed=st.integers(0, 2**32),
)
def test_shuffled_order_within_grace_gives_the_same_stage_and_windows(
    kinds: list[str], offsets: list[int], seed: int
) -> None:
    events = [ev(kind, T0 + offsets[i], f"e{i}") for i, kind in enumerate(kinds)]
    shuffled = events[:]
    random.Random(seed).shuffle(shuffled)
    a, b = run(events), run(shuffled)
    assert a.stage == b.stage
    assert a.order_count == b.order_count
    now = max(e.ts for e in events)
    for window in windows.WINDOWS.values():
        counted = sum(1 for e in events if e.type in COUNTER_OF)
        assert activity(a, now, window) == activity(b, now, window) == counted
    assert {k: sorted(map(tuple, v)) for k, v in a.counts.items()} == {
        k: sorted(map(tuple, v)) for k, v in b.counts.items()
    }


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40 * DAY), min_size=1, max_size=300))
def test_windows_stay_bounded_and_count_recent_events_exactly(gaps: list[int]) -> None:
    buckets: windows.Buckets = []
    ts = T0
    times = []
    for gap in sorted(gaps):
        ts = T0 + gap
        times.append(ts)
        windows.add(buckets, ts, ts)
    assert len(buckets) <= 180
    now = times[-1]
    since = now - 10 * MINUTE
    exact = sum(1 for t in times if t - t % MINUTE >= since - since % MINUTE + MINUTE)
    assert windows.total(buckets, now, 10 * MINUTE) >= exact
    assert windows.total(buckets, now, 30 * DAY) <= len(times)


def test_a_busy_customer_keeps_few_buckets() -> None:
    buckets: windows.Buckets = []
    for i in range(10_000):
        ts = T0 + i * 20_000  # an event every 20 s for over two days
        windows.add(buckets, ts, ts)
    assert len(buckets) <= 180
    now = T0 + 9_999 * 20_000
    assert windows.total(buckets, now, HOUR) in range(180, 184)
    assert windows.total(buckets, now, 30 * DAY) == 10_000


def _burst_reference(views: list, field: int, key: str, ts: int, window: int, n: int) -> tuple:
    """view_burst by definition: (newest end of any burst, did the view at ts make it new)."""
    times = sorted(v[0] for v in views if v[field] == key and abs(v[0] - ts) <= window)

    def newest_end(ts_list: list[int]) -> int:
        ends = [ts_list[i + n - 1] for i in range(len(ts_list) - n + 1)]
        return max((e for i, e in enumerate(ends) if e - ts_list[i] <= window), default=0)

    last = newest_end(times)
    times.remove(ts)
    return last, (last if last and not newest_end(times) else 0)


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 3 * HOUR), min_size=1, max_size=16),
    products=st.lists(st.sampled_from(["p1", "p2"]), min_size=16, max_size=16),
    window=st.sampled_from([10 * MINUTE, HOUR]),
    min_views=st.integers(1, 4),
)
def test_view_bursts_match_their_definition_in_and_out_of_order(
    offsets: list[int], products: list[str], window: int, min_views: int
) -> None:
    """The in-order shortcut (the newest view) and the general path agree with the definition."""
    from core.facts import view_burst

    state = CustomerState("c1")
    state.views = [[T0 + o, products[i], "shoes", f"v{i}"] for i, o in enumerate(offsets)]
    state.max_ts = max(T0 + o for o in offsets)
    for i, view in enumerate(state.views):  # the last view is in order only if it is the newest
        ts = view[0]
        extends, new = _burst_reference(state.views, 1, view[1], ts, window, min_views)
        assert view_burst(state, 1, view[1], ts, window, min_views, False) == extends, i
        assert view_burst(state, 1, view[1], ts, window, min_views) == new, i


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(0, 40 * DAY), min_size=0, max_size=200),
    short=st.sampled_from([HOUR, 7 * DAY, 30 * DAY]),
    long=st.sampled_from([DAY, 30 * DAY, 60 * DAY]),
)
def test_activity_pair_equals_two_activity_sums(times: list[int], short: int, long: int) -> None:
    from core.facts import activity_pair

    state = CustomerState("c1")
    for i, t in enumerate(sorted(times)):
        kind = ("view", "cart", "engage")[i % 3]
        windows.add(state.counts.setdefault(kind, []), T0 + t, T0 + t)
    now = T0 + (max(times) if times else 0)
    assert activity_pair(state, now, short, long) == (
        activity(state, now, short),
        activity(state, now, long),
    )


@settings(max_examples=200, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.integers(0, 60), st.integers(0, 3 * DAY)), min_size=1, max_size=120
    ),
    size=st.integers(1, 40),
)
@example(  # an id older than the horizon behind one within it stays, as in the FIFO
    arrivals=[(1, DAY), (2, DAY + DAY // 2), (3, DAY // 5), (4, 2 * DAY + DAY // 10), (3, 0)],
    size=32,
)
def test_dedupe_remembers_what_a_bounded_fifo_of_ids_would(
    arrivals: list[tuple[int, int]], size: int
) -> None:
    """Reference: a FIFO of (id, ts), trimmed from the oldest while over ``size`` or
    while its oldest is older than the horizon (newest ts seen minus ``dedupe_horizon``)."""
    from dataclasses import replace

    from core.facts import is_duplicate

    cfg = replace(CFG.engine, dedupe_size=size)
    state = CustomerState("c1")
    fifo: list[tuple[str, int]] = []
    newest = 0
    for n, offset in arrivals:
        event = ev("page_view", T0 + offset, f"id-{n}")
        expected = any(eid == event.event_id for eid, _ in fifo)
        if not expected:
            fifo.append((event.event_id, event.ts))
            horizon = max(newest, event.ts) - cfg.dedupe_horizon
            while fifo and (len(fifo) > size or fifo[0][1] < horizon):
                del fifo[0]
        assert is_duplicate(state, event, cfg) == expected
        newest = max(newest, event.ts)
        state.max_ts = newest  # what facts.apply keeps
        assert len(state.seen) == len(fifo)
