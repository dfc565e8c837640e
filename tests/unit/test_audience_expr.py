"""The audience expression language against hand-computed truth, and its error messages."""

from __future__ import annotations

import pytest

from core import engine
from core.audience_expr import Env, ExprError, compile_expr, compile_value
from core.config import Config
from core.durations import DAY, HOUR, MINUTE
from core.model import CustomerState, Event, Profile
from core.segments_config import RfmConfig, ScoresConfig

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _customer() -> CustomerState:
    """Three orders (100 + 50 + 250 = 400) at T0-60d, T0-20d, T0-5d; views; a profile."""
    state = CustomerState("c1")
    cfg = Config()
    events = [
        Event("o1", "order_placed", "c1", T0 - 60 * DAY, "orders", order_id="a", total=100.0),
        Event("o2", "order_placed", "c1", T0 - 20 * DAY, "orders", order_id="b", total=50.0),
        Event("v1", "product_view", "c1", T0 - 10 * DAY, "clickstream", product_id="p"),
        Event("o3", "order_placed", "c1", T0 - 5 * DAY, "orders", order_id="c", total=250.0),
        Event("v2", "product_view", "c1", T0 - 2 * HOUR, "clickstream", product_id="p"),
        Event("v3", "page_view", "c1", T0 - 30 * MINUTE, "clickstream", url="/pricing"),
        Event("s1", "search", "c1", T0 - 10 * MINUTE, "clickstream", query="shoes"),
    ]
    for ev in events:
        engine.on_event(state, ev, ev.ts, cfg)
    state.profile = Profile(
        timezone="Europe/Berlin",
        locale="de-AT",
        attributes={
            "company_size": 250,
            "industry": "saas",
            "birthday": "1990-01-11",
            "tags": ["newsletter"],
            "address": {"city": "Graz"},
        },
    )
    state.tags = ["vip"]
    return state


def holds(text: str, state: CustomerState, now: int = T0, env: Env | None = None) -> bool:
    return compile_expr(text, env)(state, now)


def value(text: str, state: CustomerState, now: int = T0, env: Env | None = None) -> object:
    return compile_value(text, env)(state, now)


def test_names_read_the_customer_state() -> None:
    s = _customer()
    assert value("order_count", s) == 3
    assert value("revenue", s) == 400.0
    assert value("days_since_order", s) == 5.0
    assert value("days_since_active", s) == pytest.approx(10 / 1440, abs=1e-4)
    assert value("days_since_first_seen", s) == 60.0
    assert s.stage == "loyalty"  # 2 orders within 90d
    assert holds("stage == 'loyalty'", s)
    assert not holds("stage in ['purchase', 'at_risk']", s)


def test_periods_count_orders_revenue_and_window_activity() -> None:
    s = _customer()
    assert value("orders_in(30d)", s) == 2  # -20d and -5d
    assert value("revenue_in(30d)", s) == 300.0
    assert value("revenue_in(90d)", s) == 400.0
    assert value("orders_in(1d)", s) == 0
    assert value("views_in(1h)", s) == 1  # the pricing page view; the product view was 2h ago
    assert value("views_in(24h)", s) == 2
    assert value("views_in(30d)", s) == 3
    assert value("searches_in(10m)", s) == 1  # (now - 10m, now]: the search at now-10m is out
    assert value("searches_in(11m)", s) == 1
    assert value("activity_in(24h)", s) == 3
    # time moves on: the same state a week later
    assert value("views_in(7d)", s, T0 + 7 * DAY) == 0
    assert value("days_since_order", s, T0 + 7 * DAY) == 12.0


def test_profile_fields_attributes_and_tags() -> None:
    s = _customer()
    assert value("language", s) == "de"
    assert value("country", s) == "AT"  # from the locale when attributes.country is unset
    s.profile.attributes["country"] = "DE"  # type: ignore[union-attr]
    assert value("country", s) == "DE"
    assert value("timezone", s) == "Europe/Berlin"
    assert value("birthday", s) == "1990-01-11"
    assert value("days_to_birthday", s) == 10
    assert value("days_to_birthday", s, T0 + 11 * DAY) == 364  # next year's, 2027-01-11
    assert holds("attributes.company_size >= 200 and attributes.industry in ['saas', 'fintech']", s)
    assert holds("attributes.address.city == 'Graz'", s)
    assert holds("attributes.missing == null", s)
    assert not holds("attributes.missing > 3", s)  # null in an ordering comparison: false
    assert not holds("attributes.industry > 3", s)  # text vs number at run time: false
    assert holds("'vip' in tags and 'newsletter' in tags", s)  # rule tags + profile tags
    assert holds("'gold' not in tags", s)
    assert holds("consent.email and consent.push", s)
    s.optouts.append("email")
    assert not holds("consent.email", s)


def test_arithmetic_logic_and_precedence() -> None:
    s = _customer()
    assert value("revenue / order_count", s) == pytest.approx(400 / 3)
    assert value("1 + 2 * 3", s) == 7
    assert value("(1 + 2) * 3", s) == 9
    assert value("-order_count + 1", s) == -2
    assert value("revenue / 0", s) is None  # no error at run time: null
    assert holds("order_count > 5 or revenue > 300 and stage == 'loyalty'", s)  # and binds tighter
    assert not holds("(order_count > 5 or revenue > 300) and stage == 'new'", s)
    assert holds("not order_count > 5", s)
    assert holds("not not true", s)
    assert holds("True and not False", s)
    assert holds("days_since_order != null", s)


def test_a_customer_without_orders_or_profile() -> None:
    s = CustomerState("c2")
    assert value("days_since_order", s) is None
    assert not holds("days_since_order > 30", s)
    assert not holds("days_since_order <= 30", s)
    assert holds("days_since_order == null", s)
    assert value("rfm.segment", s) == "prospect"
    assert value("rfm.r", s) is None
    assert value("clv", s) == 0.0
    assert value("country", s) is None
    assert not holds("'vip' in tags", s)


def test_rfm_and_clv_by_hand() -> None:
    s = _customer()
    # recency 5 days <= 14: R5; 3 orders >= 3: F3; 400 revenue >= 250: M3; fm = 3 -> loyal
    assert (value("rfm.r", s), value("rfm.f", s), value("rfm.m", s)) == (5, 3, 3)
    assert value("rfm.segment", s) == "loyal"
    env = Env(ScoresConfig(rfm=RfmConfig(recency_days=(1, 2, 3, 4))))
    assert value("rfm.r", s, env=env) == 1  # 5 days > 4
    assert value("rfm.segment", s, env=env) == "at_risk"  # R1, FM3
    # 60 days of tenure: 3 orders / (60/365 y) = 18.25 a year; aov 133.33; x 3 years
    assert value("clv", s) == pytest.approx(400 / 3 * 18.25 * 3, abs=0.01)


def test_named_audiences_are_usable_by_name() -> None:
    s = _customer()
    vip = compile_expr("revenue >= 300")
    env = Env(audiences={"big": vip})
    assert holds("big and stage == 'loyalty'", s, env=env)
    assert not holds("not big", s, env=env)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("revnue > 1", "unknown name 'revnue'; did you mean 'revenue'?", 1),
        ("stage == 'loyal'", "stage is never 'loyal'", 10),
        ("rfm.segment == 'champion'", "did you mean 'champions'?", 16),
        ("revenue > 'a'", "cannot compare revenue (number) with 'a'", 9),
        ("revenue and true", "expected a condition before 'and', got revenue (number)", 1),
        ("views_in(60d) > 1", "views_in sees at most 30d", 10),
        ("views_in(3) > 1", "views_in takes a period like 30d or 12h", 10),
        ("views_in > 1", "views_in needs a period, like views_in(30d)", 1),
        ("orders(30d) > 1", "unknown function 'orders'", 1),
        ("revenue = 3", "'=' is not a comparison: write ==", 9),
        ("(revenue > 1", "expected ')' to close the one at column 1", 13),
        ("revenue > 1 revenue", "expected 'and', 'or' or the end, got 'revenue'", 13),
        ("revenue", "expected a condition as the whole expression", 1),
        ("", "empty expression", 1),
        ("stage == 'a", "text without its closing quote", 10),
        ("30x > 1", "expected a number or a period like 30d, got '30x'", 1),
        ("lead > 50", "'lead' cannot be used here", 1),
        ("days_since_order > null", "'>' with null is never true", 18),
        ("tags > 3", "cannot compare tags (list) with 3", 6),
        ("'vip' in revenue", "'in' needs a list or text on its right", 10),
        ("revenue + stage > 1", "'+' needs numbers, got stage (text)", 11),
        ("__import__('os')", "unknown function '__import__'", 1),
        ("revenue.__class__ == 1", "unknown name 'revenue.__class__'", 1),
        ("attributes == 1", "name a profile attribute", 1),
        ("stage in [revenue]", "a list holds numbers or quoted text only", 11),
        ("revenue > 1 && true", "unexpected '&': write 'and' / 'or'", 13),
    ],
)
def test_mistakes_are_named_with_their_column(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as caught:
        compile_expr(text)
    assert message in caught.value.message
    assert caught.value.column == column
