"""The trigger catalog, one class per trigger: what fires, what does not, exits, lateness.

Every scenario runs through ``core.engine`` on the event-time driver replay uses
(``core.driver.Driver``: due timers fire before each event). The parametrised
tests at the end replay each trigger's firing scenario with every event
delivered twice, and with the state encoded and decoded (a restart) before
every event and timer: the decisions must be the same.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count
from typing import Any

import pytest

from core.config import Config, EngineConfig
from core.driver import Driver, Outputs
from core.durations import DAY, HOUR, MINUTE
from core.model import CustomerState, Decision, Event, Item
from core.triggers import SPECS
from state.codec import decode, encode

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z: outside the default quiet hours
_ids = count(1)


def ev(etype: str, ts: int, cid: str = "c1", eid: str | None = None, **fields: Any) -> Event:
    """A contract event; ``eid`` defaults to a fresh id."""
    if etype == "order_placed":
        fields.setdefault("order_id", "o1")
        fields.setdefault("total", 50.0)
        fields.setdefault("items", (Item("p1", 1, 50.0),))
    if etype == "add_to_cart":
        fields.setdefault("quantity", 1)
        fields.setdefault("price", 20.0)
    return Event(eid or f"e{next(_ids)}", etype, cid, ts, **fields)


def view(ts: int, product: str = "p1", category: str | None = "shoes", **kw: Any) -> Event:
    return ev("product_view", ts, product_id=product, category=category, **kw)


def cart(ts: int, product: str = "p1", **kw: Any) -> Event:
    return ev("add_to_cart", ts, product_id=product, **kw)


def only(*names: str, **overrides: dict[str, Any]) -> Config:
    """The default config with just ``names`` enabled (others off), plus setting overrides."""
    base = Config()
    triggers = {}
    for name, tcfg in base.triggers.items():
        tcfg = replace(tcfg, enabled=name in names)
        if name in overrides:
            tcfg = replace(tcfg, **overrides[name])
        triggers[name] = tcfg
    return Config(triggers=triggers)


class Restored(dict[str, CustomerState]):
    """Customer states read back from their changelog form at every read, as after a restart."""

    def get(self, cid: str, default: CustomerState | None = None) -> CustomerState | None:
        state = super().get(cid)
        if state is None:
            return default
        state = self[cid] = decode(encode(state))
        return state

    def __getitem__(self, cid: str) -> CustomerState:
        state = self.get(cid)
        if state is None:
            raise KeyError(cid)
        return state


class Sim:
    """The core through ``core.driver.Driver``: timers due by an event fire before it.

    With ``restart=True`` every state is read back through ``decode(encode(state))``
    and the timers are queued again from the states alone before every call, as a
    worker does after recovery.
    """

    def __init__(self, cfg: Config, restart: bool = False) -> None:
        self.cfg = cfg
        self.restart = restart
        self.outputs = Outputs()
        self.driver = Driver(cfg, self.outputs, Restored() if restart else None)
        self.duplicates = 0

    def until(self, t: int) -> None:
        if self.restart:
            self.driver.restart()
        self.driver.advance(t)

    def send(self, *events: Event) -> Sim:
        for e in events:
            if self.restart:
                self.driver.restart()
            self.duplicates += self.driver.send(e).duplicate
        return self

    def fired(self, trigger: str | None = None) -> list[Decision]:
        return [d for d in self.outputs.decisions if trigger is None or d.trigger == trigger]

    def state(self, cid: str = "c1") -> CustomerState:
        return self.driver.states[cid]


# --- abandoned_cart -------------------------------------------------------------------


class TestAbandonedCart:
    cfg = only("abandoned_cart")

    def test_cart_without_order_within_delay_fires_once_after_the_delay(self) -> None:
        sim = Sim(self.cfg).send(cart(T0, price=30.0), cart(T0 + MINUTE, "p2", price=12.5))
        sim.until(T0 + MINUTE + 30 * MINUTE - 1)
        assert sim.fired() == []
        sim.until(T0 + DAY)
        (d,) = sim.fired()
        assert d.decided_at == T0 + 31 * MINUTE
        assert d.payload["cart_value"] == 42.5 and d.payload["item_count"] == 2
        assert d.payload["step"] == 1 and d.channel == "push" and d.status == "send"
        assert "cart 1 worth 42.5" in d.reason
        assert len(d.source_event_ids) == 2

    def test_order_within_delay_cancels_abandoned_cart(self) -> None:
        sim = Sim(self.cfg).send(cart(T0), ev("order_placed", T0 + 10 * MINUTE))
        sim.until(T0 + DAY)
        assert sim.fired() == []
        assert "abandoned_cart" not in sim.state().timers

    def test_emptied_cart_cancels_the_deadline(self) -> None:
        sim = Sim(self.cfg).send(cart(T0), ev("remove_from_cart", T0 + MINUTE, product_id="p1"))
        sim.until(T0 + DAY)
        assert sim.fired() == []

    def test_cart_below_minimum_value_is_left_alone(self) -> None:
        cfg = only("abandoned_cart", abandoned_cart={"min_cart_value": 100.0})
        sim = Sim(cfg).send(cart(T0, price=99.0))
        sim.until(T0 + DAY)
        assert sim.fired() == []

    def test_later_cart_changes_push_the_deadline_back(self) -> None:
        sim = Sim(self.cfg).send(cart(T0), cart(T0 + 20 * MINUTE, "p2"))
        sim.until(T0 + 45 * MINUTE)
        assert sim.fired() == []
        sim.until(T0 + 50 * MINUTE)
        assert len(sim.fired()) == 1

    def test_one_decision_per_cart_even_when_it_changes_after_firing(self) -> None:
        sim = Sim(self.cfg).send(cart(T0))
        sim.send(cart(T0 + HOUR, "p2"), cart(T0 + 2 * HOUR, "p3"))
        sim.until(T0 + DAY)
        assert len(sim.fired()) == 1

    def test_a_new_cart_after_an_order_fires_again(self) -> None:
        sim = Sim(self.cfg).send(cart(T0))
        sim.send(ev("order_placed", T0 + HOUR), cart(T0 + 2 * HOUR))
        sim.until(T0 + DAY)
        assert [d.payload["cart_id"] for d in sim.fired()] == [1, 2]

    def test_optional_reminder_is_a_second_step(self) -> None:
        cfg = only("abandoned_cart", abandoned_cart={"reminder_delay": 4 * HOUR})
        sim = Sim(cfg).send(cart(T0))
        sim.until(T0 + DAY)
        assert [d.payload["step"] for d in sim.fired()] == [1, 2]
        assert sim.fired()[1].decided_at == T0 + 30 * MINUTE + 4 * HOUR
        assert sim.fired()[0].action_id != sim.fired()[1].action_id

    def test_order_before_the_reminder_cancels_it(self) -> None:
        cfg = only("abandoned_cart", abandoned_cart={"reminder_delay": 4 * HOUR})
        sim = Sim(cfg).send(cart(T0))
        sim.until(T0 + HOUR)
        sim.send(ev("order_placed", T0 + 2 * HOUR))
        sim.until(T0 + DAY)
        assert len(sim.fired()) == 1

    def test_late_cart_event_still_fills_the_cart(self) -> None:
        sim = Sim(self.cfg).send(cart(T0 + HOUR, price=10.0), ev("page_view", T0 + 80 * MINUTE))
        sim.send(cart(T0, "p2", price=5.0))  # 80 minutes behind: beyond late_grace
        assert sim.state().max_ts - T0 > sim.cfg.engine.late_grace
        sim.until(T0 + DAY)
        (d,) = sim.fired()
        assert d.payload["cart_value"] == 15.0


# --- browse_abandonment ----------------------------------------------------------------


class TestBrowseAbandonment:
    cfg = only("browse_abandonment")

    def test_repeated_views_without_cart_add_fire_after_the_delay(self) -> None:
        sim = Sim(self.cfg).send(view(T0, eid="v1"), view(T0 + 5 * MINUTE, eid="v2"))
        sim.until(T0 + 5 * MINUTE + HOUR - 1)
        assert sim.fired() == []
        sim.until(T0 + DAY)
        (d,) = sim.fired()
        assert d.payload["product_id"] == "p1" and d.payload["views"] == 2
        assert d.source_event_ids == ("v1", "v2") and d.channel == "email"
        assert "2 views of product p1" in d.reason

    def test_a_single_view_does_not_fire(self) -> None:
        sim = Sim(self.cfg).send(view(T0))
        sim.until(T0 + DAY)
        assert sim.fired() == []

    def test_views_further_apart_than_the_window_do_not_fire(self) -> None:
        sim = Sim(self.cfg).send(view(T0, category=None), view(T0 + 2 * HOUR, category=None))
        sim.until(T0 + DAY)
        assert sim.fired() == []

    def test_views_of_one_category_fire_too(self) -> None:
        sim = Sim(self.cfg).send(view(T0, "p1"), view(T0 + MINUTE, "p2"))
        sim.until(T0 + DAY)
        (d,) = sim.fired()
        assert d.payload["category"] == "shoes" and "category shoes" in d.reason

    @pytest.mark.parametrize("exit_type", ["add_to_cart", "order_placed"])
    def test_exit_events_cancel(self, exit_type: str) -> None:
        sim = Sim(self.cfg).send(view(T0), view(T0 + MINUTE))
        sim.send(ev(exit_type, T0 + 10 * MINUTE, product_id="p9"))
        sim.until(T0 + DAY)
        assert sim.fired() == []
        assert "browse_abandonment" not in sim.state().timers

    def test_more_views_push_the_deadline_back(self) -> None:
        sim = Sim(self.cfg).send(view(T0), view(T0 + MINUTE), view(T0 + 40 * MINUTE))
        sim.until(T0 + MINUTE + HOUR)
        assert sim.fired() == []
        sim.until(T0 + 40 * MINUTE + HOUR)
        assert len(sim.fired()) == 1

    def test_out_of_order_views_within_grace_fire_once(self) -> None:
        sim = Sim(self.cfg).send(view(T0 + 5 * MINUTE), view(T0))
        sim.until(T0 + DAY)
        assert len(sim.fired()) == 1

    def test_late_views_do_not_count(self) -> None:
        sim = Sim(self.cfg).send(view(T0 + HOUR, category=None))
        sim.send(view(T0 + 59 * MINUTE - 20 * MINUTE, category=None))  # within window, but late
        sim.until(T0 + DAY)
        assert sim.fired() == []

    def test_no_new_deadline_inside_the_cooldown(self) -> None:
        sim = Sim(self.cfg).send(view(T0), view(T0 + MINUTE))
        sim.until(T0 + 3 * HOUR)
        sim.send(view(T0 + 4 * HOUR), view(T0 + 4 * HOUR + MINUTE))
        sim.until(T0 + 10 * HOUR)
        assert len(sim.fired()) == 1


# --- limited_time_offer ----------------------------------------------------------------


class TestLimitedTimeOffer:
    cfg = only("limited_time_offer")

    def test_three_views_of_a_product_within_ten_minutes_fire_at_once(self) -> None:
        sim = Sim(self.cfg).send(view(T0), view(T0 + 2 * MINUTE), view(T0 + 9 * MINUTE, eid="v3"))
        (d,) = sim.fired()
        assert d.decided_at == T0 + 9 * MINUTE
        assert d.payload["expires_at"] == d.decided_at + 2 * HOUR
        assert d.payload["product_id"] == "p1" and d.payload["discount_percent"] == 10
        code = d.payload["code"]
        assert len(code) == 9 and code[4] == "-"
        assert "3 views of product p1" in d.reason and "v3" in d.source_event_ids

    def test_views_spread_over_more_than_the_window_do_not_fire(self) -> None:
        sim = Sim(self.cfg).send(view(T0), view(T0 + 6 * MINUTE), view(T0 + 12 * MINUTE))
        assert sim.fired() == []

    def test_a_fourth_view_does_not_make_a_second_offer(self) -> None:
        views = [view(T0 + i * MINUTE) for i in range(5)]
        assert len(Sim(self.cfg).send(*views).fired()) == 1

    def test_second_checkout_without_order_fires(self) -> None:
        sim = Sim(self.cfg).send(cart(T0, price=80.0), ev("checkout_started", T0 + MINUTE))
        assert sim.fired() == []
        sim.send(ev("checkout_started", T0 + 3 * MINUTE, eid="co2"))
        (d,) = sim.fired()
        assert d.payload["product_id"] == "p1" and "2 checkouts started" in d.reason
        assert (
            d.action_id
            == Sim(self.cfg)
            .send(cart(T0, price=80.0), ev("checkout_started", T0 + MINUTE))
            .send(ev("checkout_started", T0 + 3 * MINUTE, eid="co2"))
            .fired()[0]
            .action_id
        )

    def test_an_order_resets_the_checkout_count(self) -> None:
        sim = Sim(self.cfg).send(
            cart(T0),
            ev("checkout_started", T0 + MINUTE),
            ev("order_placed", T0 + 2 * MINUTE),
            cart(T0 + HOUR),
            ev("checkout_started", T0 + HOUR + MINUTE),
        )
        assert sim.fired() == []

    def test_cooldown_suppresses_a_second_offer(self) -> None:
        sim = Sim(self.cfg).send(*(view(T0 + i * MINUTE) for i in range(3)))
        sim.send(*(view(T0 + DAY + i * MINUTE, "p2") for i in range(3)))
        assert [d.status for d in sim.fired()] == ["send", "suppressed_cooldown"]

    def test_out_of_order_views_within_grace_fire_once(self) -> None:
        sim = Sim(self.cfg).send(view(T0 + 8 * MINUTE), view(T0 + 4 * MINUTE), view(T0))
        assert len(sim.fired()) == 1

    def test_late_views_never_fire(self) -> None:
        sim = Sim(self.cfg).send(view(T0 + HOUR), view(T0 + HOUR + MINUTE))
        sim.send(view(T0 + HOUR - 15 * MINUTE))  # late, and outside the window anyway
        sim.send(view(T0 + 20 * MINUTE))
        assert sim.fired() == []
        assert sim.state().views[-1][0] != T0 + 20 * MINUTE  # late views are not kept


# --- post_purchase ---------------------------------------------------------------------


class TestPostPurchase:
    cfg = only("post_purchase")

    def _paid(self, ts: int, order: str = "o1", total: float = 50.0) -> list[Event]:
        return [
            ev("order_placed", ts, order_id=order, total=total, eid=f"{order}-placed"),
            ev("order_paid", ts + MINUTE, order_id=order, eid=f"{order}-paid"),
        ]

    def test_follow_up_after_the_delay_from_payment(self) -> None:
        sim = Sim(self.cfg).send(*self._paid(T0))
        sim.until(T0 + MINUTE + 3 * DAY - 1)
        assert sim.fired() == []
        sim.until(T0 + 10 * DAY)
        (d,) = sim.fired()
        assert d.decided_at == T0 + MINUTE + 3 * DAY
        assert d.payload == {
            "order_id": "o1",
            "kind": "review_request",
            "total": 50.0,
            "currency": "",
        }
        assert d.source_event_ids == ("o1-placed", "o1-paid")

    def test_unpaid_order_gets_no_follow_up(self) -> None:
        sim = Sim(self.cfg).send(self._paid(T0)[0])
        sim.until(T0 + 10 * DAY)
        assert sim.fired() == []

    @pytest.mark.parametrize("exit_type", ["order_cancelled", "order_refunded"])
    def test_cancelled_or_refunded_order_gets_none(self, exit_type: str) -> None:
        sim = Sim(self.cfg).send(*self._paid(T0), ev(exit_type, T0 + DAY, order_id="o1"))
        sim.until(T0 + 10 * DAY)
        assert sim.fired() == []
        assert "post_purchase" not in sim.state().timers

    def test_on_order_placed_and_cross_sell_per_config(self) -> None:
        cfg = only("post_purchase", post_purchase={"on": "order_placed", "kind": "cross_sell"})
        sim = Sim(cfg).send(self._paid(T0)[0])
        sim.until(T0 + 10 * DAY)
        (d,) = sim.fired()
        assert d.decided_at == T0 + 3 * DAY and d.payload["kind"] == "cross_sell"

    def test_each_of_several_orders_gets_one_follow_up(self) -> None:
        sim = Sim(self.cfg).send(*self._paid(T0, "o1"), *self._paid(T0 + DAY, "o2"))
        sim.send(ev("order_cancelled", T0 + 2 * DAY, order_id="o2"))
        sim.send(*self._paid(T0 + 2 * DAY, "o3"))
        sim.until(T0 + 30 * DAY)
        assert [d.payload["order_id"] for d in sim.fired()] == ["o1", "o3"]

    def test_payment_of_an_unknown_order_is_ignored(self) -> None:
        sim = Sim(self.cfg).send(ev("order_paid", T0, order_id="nope"))
        sim.until(T0 + 10 * DAY)
        assert sim.fired() == []


# --- welcome ---------------------------------------------------------------------------


class TestWelcome:
    cfg = only("welcome")

    def test_first_activity_is_welcomed_once(self) -> None:
        sim = Sim(self.cfg).send(ev("page_view", T0, eid="first"), view(T0 + MINUTE))
        sim.send(ev("session_start", T0 + DAY))
        (d,) = sim.fired()
        assert d.payload["reason"] == "first activity" and d.source_event_ids == ("first",)
        assert "new -> awareness" in d.reason

    def test_first_purchase_is_welcomed_too(self) -> None:
        sim = Sim(self.cfg).send(ev("page_view", T0), ev("order_placed", T0 + HOUR))
        sim.send(ev("order_placed", T0 + DAY, order_id="o2"))
        assert [d.payload["reason"] for d in sim.fired()] == ["first activity", "first purchase"]

    def test_an_order_as_first_event_gets_one_welcome(self) -> None:
        sim = Sim(self.cfg).send(ev("order_placed", T0))
        assert [d.payload["reason"] for d in sim.fired()] == ["first purchase"]

    def test_each_occasion_can_be_switched_off(self) -> None:
        cfg = only("welcome", welcome={"on_first_activity": False})
        sim = Sim(cfg).send(ev("page_view", T0), ev("order_placed", T0 + HOUR))
        assert [d.payload["reason"] for d in sim.fired()] == ["first purchase"]
        cfg = only("welcome", welcome={"on_first_purchase": False})
        sim = Sim(cfg).send(ev("order_placed", T0))
        assert [d.payload["reason"] for d in sim.fired()] == ["first activity"]

    def test_order_follow_ups_are_not_activity(self) -> None:
        sim = Sim(self.cfg).send(ev("order_shipped", T0, order_id="x"))
        assert sim.fired() == []


# --- churn_alert and win_back ---------------------------------------------------------------


def purchaser(sim: Sim, ts: int = T0) -> Sim:
    return sim.send(ev("order_placed", ts))


class TestChurnAlert:
    cfg = only("churn_alert")

    def test_purchaser_going_at_risk_alerts_the_success_team(self) -> None:
        sim = purchaser(Sim(self.cfg))
        sim.until(T0 + 30 * DAY - 1)
        assert sim.fired() == []
        sim.until(T0 + 31 * DAY)
        (d,) = sim.fired()
        assert d.channel == "slack" and d.status == "send"
        assert d.payload["stage"] == "at_risk" and d.payload["days_inactive"] == 30
        assert "no activity for 30 days" in d.reason

    def test_activity_keeps_a_purchaser_from_going_at_risk(self) -> None:
        sim = purchaser(Sim(self.cfg)).send(ev("page_view", T0 + 20 * DAY))
        sim.until(T0 + 45 * DAY)
        assert sim.fired() == []

    def test_win_back_offer_goes_with_the_alert_when_asked(self) -> None:
        cfg = only("churn_alert", "win_back", churn_alert={"win_back_offer": True})
        sim = purchaser(Sim(cfg))
        sim.until(T0 + 31 * DAY)
        alert, offer = sim.fired()
        assert (alert.trigger, offer.trigger) == ("churn_alert", "win_back")
        assert offer.payload["stage"] == "at_risk" and offer.payload["code"]

    def test_engagement_drop_is_noticed_on_activity(self) -> None:
        daily = [ev("page_view", T0 + i * DAY + j * HOUR) for i in range(20) for j in range(3)]
        sim = Sim(self.cfg).send(*daily, ev("page_view", T0 + 24 * DAY))
        assert sim.fired() == []
        sim.send(ev("page_view", T0 + 28 * DAY, eid="back"))  # 2 in the last 7 days vs 62
        (d,) = sim.fired()
        assert d.decided_at == T0 + 28 * DAY
        assert "engagement drop: 2 events in the last 7d" in d.reason
        assert d.source_event_ids == ("back",)

    def test_engagement_drop_is_noticed_by_timer_when_the_customer_goes_silent(self) -> None:
        sim = Sim(self.cfg).send(*(ev("page_view", T0 + i * DAY) for i in range(10)))
        sim.until(T0 + 9 * DAY + 7 * DAY)
        assert sim.fired() == []
        sim.until(T0 + 20 * DAY)
        (d,) = sim.fired()
        assert d.decided_at == T0 + 16 * DAY + MINUTE and "0 events in the last 7d" in d.reason

    def test_little_history_means_no_drop_alert(self) -> None:
        sim = Sim(self.cfg).send(*(ev("page_view", T0 + i * DAY) for i in range(5)))
        sim.until(T0 + 25 * DAY)
        assert sim.fired() == []
        assert "churn_alert" not in sim.state().timers

    def test_steady_activity_means_no_alert(self) -> None:
        sim = Sim(self.cfg).send(*(ev("page_view", T0 + i * DAY) for i in range(40)))
        assert sim.fired() == []


class TestWinBack:
    cfg = only("win_back")

    def test_churned_customer_gets_an_offer_with_code_and_expiry(self) -> None:
        sim = purchaser(Sim(self.cfg))
        sim.until(T0 + 100 * DAY)
        (d,) = sim.fired()
        assert d.decided_at == T0 + 90 * DAY
        assert d.payload["expires_at"] == d.decided_at + 7 * DAY
        assert d.payload["discount_percent"] == 15 and d.payload["code"]
        assert sim.state().stage == "churned"

    def test_a_returning_customer_is_not_won_back(self) -> None:
        sim = purchaser(Sim(self.cfg))
        sim.until(T0 + 40 * DAY)
        assert sim.state().stage == "at_risk"
        sim.send(ev("app_open", T0 + 40 * DAY))
        assert sim.state().stage == "purchase"
        sim.until(T0 + 100 * DAY)  # at risk again from day 70, churned only at day 130
        assert sim.fired() == []


# --- nps_detractor ---------------------------------------------------------------------


class TestNpsDetractor:
    cfg = only("nps_detractor")

    @pytest.mark.parametrize(
        ("etype", "score", "fires"),
        [
            *[("nps", 0, True), ("nps", 6, True), ("nps", 7, False), ("nps", 10, False)],
            *[("review", 1, True), ("review", 2, True), ("review", 3, False)],
        ],
    )
    def test_low_scores_alert_immediately(self, etype: str, score: float, fires: bool) -> None:
        sim = Sim(self.cfg).send(ev(etype, T0, score=score, eid="s1"))
        assert len(sim.fired()) == fires
        if fires:
            (d,) = sim.fired()
            assert d.channel == "slack" and d.decided_at == T0
            assert d.payload == {"score": score, "kind": etype} and d.source_event_ids == ("s1",)

    def test_answer_without_a_score_is_ignored(self) -> None:
        assert Sim(self.cfg).send(ev("nps", T0)).fired() == []

    def test_late_detractor_still_alerts(self) -> None:
        sim = Sim(self.cfg).send(ev("page_view", T0 + DAY), ev("nps", T0, score=2))
        assert len(sim.fired()) == 1


# --- every trigger: duplicates, restarts, payloads ---------------------------------------------

SCENARIOS: dict[str, tuple[list[Event], int]] = {
    "abandoned_cart": ([cart(T0), cart(T0 + MINUTE, "p2")], T0 + DAY),
    "browse_abandonment": ([view(T0), view(T0 + 5 * MINUTE)], T0 + DAY),
    "limited_time_offer": ([view(T0), view(T0 + MINUTE), view(T0 + 2 * MINUTE)], T0 + HOUR),
    "post_purchase": (
        [ev("order_placed", T0), ev("order_paid", T0 + MINUTE, order_id="o1")],
        T0 + 5 * DAY,
    ),
    "welcome": ([ev("page_view", T0), ev("order_placed", T0 + HOUR)], T0 + DAY),
    "churn_alert": (
        [ev("order_placed", T0)] + [ev("page_view", T0 + i * DAY) for i in range(1, 12)],
        T0 + 60 * DAY,
    ),
    "win_back": ([ev("order_placed", T0)], T0 + 100 * DAY),
    "nps_detractor": ([ev("nps", T0, score=3), ev("review", T0 + DAY, score=1)], T0 + 2 * DAY),
}


def _run(name: str, *, twice: bool = False, restart: bool = False) -> Sim:
    events, end = SCENARIOS[name]
    sim = Sim(only(name), restart=restart)
    for e in events:
        sim.send(e)
        if twice:
            sim.send(e)
        sim.until(e.ts)
    sim.until(end)
    return sim


def _outcome(sim: Sim) -> list[tuple[Any, ...]]:
    return [(d.action_id, d.decided_at, d.status, d.reason, repr(d.payload)) for d in sim.fired()]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_trigger_fires_in_its_scenario(name: str) -> None:
    assert _run(name).fired(name)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_event_id_twice_is_one_effect(name: str) -> None:
    sim = _run(name, twice=True)
    assert sim.duplicates == len(SCENARIOS[name][0])
    assert _outcome(sim) == _outcome(_run(name))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_restart_between_every_call_gives_the_same_decisions(name: str) -> None:
    assert _outcome(_run(name, restart=True)) == _outcome(_run(name))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_action_ids_are_stable_across_replays(name: str) -> None:
    first, again = _run(name), _run(name)
    assert [d.action_id for d in first.fired()] == [d.action_id for d in again.fired()]
    assert len({d.action_id for d in first.fired()}) == len(first.fired())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_payload_covers_the_trigger_template_variables(name: str) -> None:
    for d in _run(name).fired(name):
        assert d.reason and d.trigger == name
        # payload.recommended is there when recommend.enabled (tests/unit/test_recommend.py)
        assert SPECS[name].template_vars - {"recommended"} <= set(d.payload), d.payload


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_disabled_trigger_does_not_fire(name: str) -> None:
    events, end = SCENARIOS[name]
    sim = Sim(only()).send(*events)
    sim.until(end)
    assert sim.fired() == []


def test_every_trigger_is_registered_with_unique_timer_kinds() -> None:
    assert list(SPECS) == list(Config().triggers)
    kinds = [kind for spec in SPECS.values() for kind in spec.timers]
    assert len(kinds) == len(set(kinds)) and "journey" not in kinds


def test_holdout_customers_are_decided_but_not_sent() -> None:
    cfg = only("nps_detractor", nps_detractor={"holdout": 0.5})
    statuses = {
        Sim(cfg).send(ev("nps", T0, cid=f"c{i}", score=1)).fired()[0].status for i in range(40)
    }
    assert statuses == {"send", "held_out"}


def test_quiet_hours_defer_customer_messages_not_team_alerts() -> None:
    night = T0 + 14 * HOUR  # 23:00 UTC
    cfg = only("abandoned_cart", "limited_time_offer", "nps_detractor")
    sim = Sim(cfg).send(cart(night - 20 * MINUTE))  # due at 23:10
    sim.send(*(view(night + i * MINUTE) for i in range(3)))  # a 2h offer ends before 08:00
    sim.send(ev("nps", night + 5 * MINUTE, score=0))
    sim.until(night + HOUR)
    statuses = {d.trigger: d.status for d in sim.fired()}
    assert statuses == {
        "limited_time_offer": "suppressed_quiet_hours",
        "nps_detractor": "send",
        "abandoned_cart": "deferred_quiet_hours",
    }
    (deferred,) = sim.fired("abandoned_cart")
    assert deferred.payload["deliver_at"] == T0 + DAY - HOUR  # 08:00 the next morning


def test_engine_grace_setting_defines_late() -> None:
    cfg = replace(only("limited_time_offer"), engine=EngineConfig(late_grace=HOUR))
    sim = Sim(cfg).send(view(T0 + 50 * MINUTE, "p2"), view(T0), view(T0 + MINUTE))
    sim.send(view(T0 + 2 * MINUTE))  # 48 minutes behind, within the one-hour grace
    assert len(sim.fired()) == 1
