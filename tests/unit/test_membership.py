"""Membership: the points ledger, tiers, expiry, and the tier_changed, points_expiring and
birthday triggers, through the engine on the event-time driver replay uses."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import points, tiers
from core.config import Config, MembershipConfig
from core.config_file import ConfigError, parse_config
from core.driver import Driver, Outputs
from core.durations import DAY, HOUR
from core.model import CustomerState, Decision, Event, Item, Profile
from core.triggers.birthday import birth_month_day, next_birthday, on_day
from state.codec import decode, encode

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z
_ids = count(1)


def ev(etype: str, ts: int, eid: str | None = None, **fields: Any) -> Event:
    if etype == "order_placed":
        fields.setdefault("order_id", "o1")
        fields.setdefault("total", 100.0)
        fields.setdefault("items", (Item("p1", 1, fields["total"]),))
    return Event(eid or f"e{next(_ids)}", etype, "c1", ts, **fields)


def order(ts: int, oid: str, total: float) -> Event:
    return ev("order_placed", ts, order_id=oid, total=total)


def config(*on: str, membership: dict[str, Any] | None = None, **triggers: Any) -> Config:
    base = Config()
    trigger_cfgs = {}
    for name, tcfg in base.triggers.items():
        tcfg = replace(tcfg, enabled=name in on)
        if name in triggers:
            tcfg = replace(tcfg, **triggers[name])
        trigger_cfgs[name] = tcfg
    mcfg = replace(base.membership, enabled=True, **(membership or {}))
    return replace(base, triggers=trigger_cfgs, membership=mcfg)


def ms(text: str, zone: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


class Sim:
    """One customer on the driver; optionally restarted (state re-decoded) before every call."""

    def __init__(self, cfg: Config, restart: bool = False) -> None:
        self.cfg = cfg
        self.out = Outputs()
        self.driver = Driver(cfg, self.out)
        self.restart = restart

    def _restart(self) -> None:
        if self.restart:
            self.driver.states = {k: decode(encode(s)) for k, s in self.driver.states.items()}
            self.driver.restart()

    def send(self, *events: Event) -> Sim:
        for e in events:
            self._restart()
            self.driver.send(e)
        return self

    def until(self, t: int) -> Sim:
        self._restart()
        self.driver.advance(t)
        return self

    def profile(self, at: int, **fields: Any) -> Sim:
        self._restart()
        self.driver.profile("c1", Profile(**fields) if fields else None, at)
        return self

    @property
    def state(self) -> CustomerState:
        return self.driver.state("c1")

    def fired(self, trigger: str | None = None) -> list[Decision]:
        return [d for d in self.out.decisions if trigger is None or d.trigger == trigger]


MCFG = replace(MembershipConfig(), enabled=True)


# --- the ledger ---------------------------------------------------------------------------------


def test_orders_earn_points_per_currency_unit_rounded_down() -> None:
    sim = Sim(config(membership={"points_per_unit": 2.0}))
    sim.send(order(T0, "o1", 123.45), order(T0 + HOUR, "o2", 10.0))
    assert points.balance(sim.state.member, T0 + HOUR, sim.cfg.membership) == 246 + 20


def test_cancel_and_refund_take_an_order_back_once() -> None:
    # the same day: a second take-back of o1 would eat o2's points from the day's bucket
    sim = Sim(config()).send(order(T0, "o1", 300.0), order(T0 + HOUR, "o2", 350.0))
    sim.send(ev("order_cancelled", T0 + 2 * DAY, order_id="o1"))
    sim.send(ev("order_refunded", T0 + 3 * DAY, order_id="o1"))  # after the cancel: nothing more
    assert points.balance(sim.state.member, T0 + 3 * DAY, MCFG) == 350
    assert (
        points.qualifying(sim.state.member, T0 + 3 * DAY, replace(MCFG, tier_basis="spend")) == 350
    )


def test_an_order_sent_again_under_a_new_event_id_earns_once() -> None:
    # The engine's dedupe remembers 32 events for a day; the ledger keys on the order id.
    sim = Sim(config()).send(order(T0, "o1", 80.0))
    sim.send(*(ev("page_view", T0 + i) for i in range(1, 40)))
    sim.send(order(T0 + 2 * DAY, "o1", 80.0))
    assert points.balance(sim.state.member, T0 + 2 * DAY, MCFG) == 80


def test_figures_do_not_depend_on_arrival_order() -> None:
    events = [
        order(T0, "o1", 120.0),
        order(T0 + 3 * DAY, "o2", 700.0),
        ev("order_refunded", T0 + 4 * DAY, order_id="o2"),
        order(T0 + 5 * DAY, "o3", 1900.0),
        ev("review", T0 + 5 * DAY, score=5),
    ]
    cfg = config(membership={"review_bonus": 25})
    results = set()
    for perm in itertools.permutations(events):
        sim = Sim(cfg).send(*perm)
        member = sim.state.member
        at = T0 + 10 * DAY
        results.add(
            (
                points.balance(member, at, cfg.membership),
                tuple(points.lapses(member, at, cfg.membership)),
            )
        )
    # a refund seen before its order keeps the order from earning: the same total either way
    assert len(results) == 1
    balance, _ = results.pop()
    assert balance == 120 + 1900 + 25


def test_review_bonus_at_most_once_a_day() -> None:
    cfg = config(membership={"review_bonus": 30})
    sim = Sim(cfg).send(ev("review", T0, score=5), ev("review", T0 + HOUR, score=4))
    sim.send(ev("review", T0 + DAY, score=3))
    assert points.balance(sim.state.member, T0 + DAY, cfg.membership) == 60


def test_earning_on_payment_uses_the_placed_total_and_a_cancel_before_it_wins() -> None:
    cfg = config(membership={"earn_on": "order_paid"})
    sim = Sim(cfg).send(order(T0, "o1", 90.0), order(T0, "o2", 40.0))
    assert points.balance(sim.state.member, T0, cfg.membership) == 0
    sim.send(ev("order_paid", T0 + HOUR, order_id="o1"))
    sim.send(ev("order_cancelled", T0 + HOUR, order_id="o2"))
    sim.send(ev("order_paid", T0 + 2 * HOUR, order_id="o2"))  # cancelled first: never earns
    assert points.balance(sim.state.member, T0 + 2 * HOUR, cfg.membership) == 90


def test_points_lapse_at_the_end_of_the_day_expiry_after_earning() -> None:
    cfg = config(membership={"expiry": 30 * DAY})
    sim = Sim(cfg).send(order(T0, "o1", 100.0), order(T0 + 10 * DAY, "o2", 5.0))
    day = T0 // DAY * DAY
    lapse = day + 31 * DAY  # end of day D + 30
    assert points.balance(sim.state.member, lapse - 1, cfg.membership) == 105
    assert points.balance(sim.state.member, lapse, cfg.membership) == 5
    assert points.lapses(sim.state.member, T0, cfg.membership) == [
        (lapse, 100),
        (lapse + 10 * DAY, 5),
    ]


def test_history_is_bounded_and_keeps_every_point() -> None:
    cfg = config(membership={"max_days": 5})
    sim = Sim(cfg)
    for i in range(40):
        sim.send(order(T0 + i * DAY, f"o{i}", 10.0))
    member = sim.state.member
    assert len(member["d"]) == 5 and len(member["o"]) == 5
    assert points.balance(member, T0 + 40 * DAY, cfg.membership) == 400


def test_old_days_beyond_expiry_and_window_are_dropped() -> None:
    cfg = config(membership={"expiry": 10 * DAY, "tier_window": 10 * DAY})
    sim = Sim(cfg)
    for i in range(0, 100, 5):
        sim.send(order(T0 + i * DAY, f"o{i}", 10.0))
    assert len(sim.state.member["d"]) <= 3


def test_ledger_survives_a_restart_between_every_event() -> None:
    events = [order(T0 + i * DAY, f"o{i}", 50.0 + i) for i in range(8)]
    events.append(ev("order_refunded", T0 + 9 * DAY, order_id="o3"))
    plain = Sim(config("tier_changed", "points_expiring")).send(*events)
    again = Sim(config("tier_changed", "points_expiring"), restart=True).send(*events)
    assert again.state.member == plain.state.member
    assert [d.action_id for d in again.fired()] == [d.action_id for d in plain.fired()]


def test_membership_off_keeps_no_ledger() -> None:
    cfg = replace(config("tier_changed"), membership=MembershipConfig())
    sim = Sim(cfg).send(order(T0, "o1", 9000.0))
    assert sim.state.member == {} and sim.fired() == []


# --- tiers ---------------------------------------------------------------------------------------


def test_tier_levels_and_names() -> None:
    assert [tiers.level(x, MCFG) for x in (0, 499, 500, 1999, 2000, 5000, 10**6)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
    ]
    assert [tiers.name(i, MCFG) for i in range(4)] == ["member", "silver", "gold", "platinum"]


def test_upgrade_is_congratulated_once_per_tier() -> None:
    sim = Sim(config("tier_changed")).send(order(T0, "o1", 400.0), order(T0 + DAY, "o2", 200.0))
    sim.send(order(T0 + 2 * DAY, "o3", 100.0), order(T0 + 3 * DAY, "o4", 1400.0))
    ups = [(d.payload["tier"], d.payload["previous_tier"]) for d in sim.fired("tier_changed")]
    assert ups == [("silver", "member"), ("gold", "silver")]


def test_spend_basis_counts_money_not_points() -> None:
    cfg = config("tier_changed", membership={"tier_basis": "spend", "points_per_unit": 0.1})
    sim = Sim(cfg).send(order(T0, "o1", 600.0))
    assert [d.payload["tier"] for d in sim.fired()] == ["silver"]


def test_downgrade_is_warned_ahead_then_happens_when_earnings_leave_the_window() -> None:
    cfg = config(
        "tier_changed",
        membership={"tier_window": 90 * DAY},
        tier_changed={"warn_ahead": 14 * DAY},
    )
    sim = Sim(cfg).send(order(T0, "o1", 600.0), order(T0 + 30 * DAY, "o2", 100.0))
    leaves = (T0 // DAY + 91) * DAY  # the first order's day leaves the window: 100 < 500
    sim.until(leaves - 14 * DAY - 1)
    assert [d.payload["kind"] for d in sim.fired()] == ["upgrade"]
    sim.until(leaves - 14 * DAY)
    warning = sim.fired()[-1]
    assert warning.payload["kind"] == "downgrade_warning"
    assert warning.payload["downgrade_at"] == leaves and warning.payload["needed"] == 400
    assert warning.payload["tier"] == "member" and warning.payload["previous_tier"] == "silver"
    assert warning.decided_at == leaves - 14 * DAY
    sim.until(leaves + 400 * DAY)
    assert len(sim.fired()) == 2  # warned once; the drop itself sends nothing
    assert tiers.current(sim.state.member, leaves, cfg.membership) == 0
    sim.send(order(leaves + 401 * DAY, "o3", 800.0))  # earned again: congratulated again
    assert [d.payload["kind"] for d in sim.fired()][-1] == "upgrade"


def test_earning_before_the_warning_moves_the_downgrade() -> None:
    cfg = config("tier_changed", membership={"tier_window": 90 * DAY})
    sim = Sim(cfg).send(order(T0, "o1", 600.0))
    sim.send(order(T0 + 60 * DAY, "o2", 550.0))  # keeps silver for another 60 days
    sim.until(T0 + 100 * DAY)
    assert [d.payload["kind"] for d in sim.fired()] == ["upgrade"]
    sim.until(T0 + 200 * DAY)
    warnings = [d for d in sim.fired() if d.payload["kind"] == "downgrade_warning"]
    assert [w.payload["downgrade_at"] for w in warnings] == [(T0 // DAY + 60 + 91) * DAY]


def test_refund_drops_the_tier_at_once_without_a_message() -> None:
    sim = Sim(config("tier_changed")).send(order(T0, "o1", 2500.0))
    sim.send(ev("order_refunded", T0 + DAY, order_id="o1"))
    assert [d.payload["tier"] for d in sim.fired()] == ["gold"]
    assert tiers.current(sim.state.member, T0 + DAY, MCFG) == 0
    assert "tier_changed" not in sim.state.timers


# --- points_expiring ------------------------------------------------------------------------------


def test_reminder_before_points_lapse_counts_them_when_due() -> None:
    cfg = config(
        "points_expiring",
        membership={"expiry": 60 * DAY},
        points_expiring={"ahead": 7 * DAY},
    )
    sim = Sim(cfg).send(
        order(T0, "o1", 100.0), order(T0, "o2", 30.0), order(T0 + 5 * DAY, "o3", 8.0)
    )
    sim.send(ev("order_refunded", T0 + 10 * DAY, order_id="o2"))
    sim.until(T0 + 200 * DAY)
    lapse = (T0 // DAY + 61) * DAY
    got = [(d.decided_at, d.payload["expiring"], d.payload["expires_at"]) for d in sim.fired()]
    assert got == [(lapse - 7 * DAY, 100, lapse), (lapse - 2 * DAY, 8, lapse + 5 * DAY)]
    assert sim.fired()[0].payload["points"] == 108


def test_no_reminder_for_points_already_taken_back() -> None:
    cfg = config("points_expiring", membership={"expiry": 30 * DAY})
    sim = Sim(cfg).send(order(T0, "o1", 100.0))
    sim.send(ev("order_cancelled", T0 + DAY, order_id="o1"))
    sim.until(T0 + 100 * DAY)
    assert sim.fired() == []


# --- birthday -------------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


def test_birth_dates_as_profiles_give_them() -> None:
    assert birth_month_day("1990-02-29") is None or birth_month_day("1992-02-29") == (2, 29)
    assert birth_month_day("1992-02-29") == (2, 29)
    assert birth_month_day("--07-04") == (7, 4) and birth_month_day("07-04") == (7, 4)
    assert [birth_month_day(x) for x in ("1990-13-01", "02-30", "soon", 19900101, None)] == [
        None
    ] * 5


def test_leap_day_birthdays_in_other_years() -> None:
    assert on_day(2027, 2, 29, "feb28").isoformat() == "2027-02-28"
    assert on_day(2027, 2, 29, "mar1").isoformat() == "2027-03-01"
    assert on_day(2028, 2, 29, "mar1").isoformat() == "2028-02-29"
    assert on_day(2100, 2, 29, "feb28").isoformat() == "2100-02-28"  # not a leap year


@pytest.mark.parametrize(
    ("zone", "month_day", "send_at", "expected_utc"),
    [
        ("Europe/Berlin", (1, 15), "10:00", "2026-01-15T09:00"),  # CET, UTC+1
        ("Europe/Berlin", (7, 15), "10:00", "2026-07-15T08:00"),  # CEST, UTC+2
        ("Europe/Berlin", (3, 29), "02:30", "2026-03-29T01:30"),  # a DST gap: 03:30 CEST
        ("Europe/Berlin", (10, 25), "02:30", "2026-10-25T00:30"),  # repeated: the first one
        ("America/New_York", (3, 8), "10:00", "2026-03-08T14:00"),  # the spring-forward day
        ("Australia/Sydney", (1, 15), "10:00", "2026-01-14T23:00"),  # AEDT, the day before in UTC
        ("Pacific/Kiritimati", (1, 2), "10:00", "2026-01-01T20:00"),  # UTC+14
        ("Pacific/Pago_Pago", (1, 2), "10:00", "2026-01-02T21:00"),  # UTC-11
    ],
)
def test_birthday_time_is_local(
    zone: str, month_day: tuple[int, int], send_at: str, expected_utc: str
) -> None:
    due, year = next_birthday(*month_day, ZoneInfo(zone), send_at, "feb28", T0 - DAY, 0)
    assert (datetime.fromtimestamp(due / 1000, UTC).strftime("%Y-%m-%dT%H:%M"), year) == (
        expected_utc,
        2026,
    )


def birthday_sim(birth: str, zone: str = "Europe/Berlin", restart: bool = False, **kw: Any) -> Sim:
    sim = Sim(config("birthday", birthday=kw), restart=restart)
    return sim.profile(T0, timezone=zone, attributes={"birth_date": birth})


def test_birthday_fires_once_a_year_rearmed_by_its_timer() -> None:
    sim = birthday_sim("1980-06-01", restart=True)
    sim.until(ms("2029-01-01T00:00"))
    got = [(d.payload["year"], d.decided_at) for d in sim.fired("birthday")]
    assert got == [(y, ms(f"{y}-06-01T10:00", "Europe/Berlin")) for y in (2026, 2027, 2028)]
    assert len({d.action_id for d in sim.fired()}) == 3


def test_leap_day_birthday_over_four_years() -> None:
    for rule, non_leap in (("feb28", "02-28"), ("mar1", "03-01")):
        sim = birthday_sim("1992-02-29", "UTC", leap_day=rule)
        sim.until(ms("2030-01-01T00:00"))
        days = [
            datetime.fromtimestamp(d.decided_at / 1000, UTC).strftime("%Y-%m-%d")
            for d in sim.fired()
        ]
        assert days == [f"2026-{non_leap}", f"2027-{non_leap}", "2028-02-29", f"2029-{non_leap}"]


def test_a_profile_sent_again_after_the_birthday_does_not_send_twice() -> None:
    sim = birthday_sim("1980-01-02", "UTC")
    sim.until(ms("2026-01-02T12:00"))
    sim.profile(
        ms("2026-01-02T12:00"),
        timezone="Pacific/Pago_Pago",
        attributes={"birth_date": "1980-01-02"},
    )
    sim.until(ms("2026-12-31T00:00"))  # in Pago Pago it is still 2 January at 10:00 later on
    assert [d.payload["year"] for d in sim.fired()] == [2026]


def test_a_changed_birth_date_moves_the_timer_and_a_forgotten_profile_cancels_it() -> None:
    sim = birthday_sim("1980-05-05", "UTC")
    assert sim.state.timers["birthday"] == ms("2026-05-05T10:00")
    sim.profile(T0 + DAY, timezone="UTC", attributes={"birth_date": "1980-03-03"})
    assert sim.state.timers["birthday"] == ms("2026-03-03T10:00")
    sim.profile(T0 + 2 * DAY)  # forgotten
    sim.until(ms("2027-01-01T00:00"))
    assert sim.fired() == [] and "birthday" not in sim.state.timers


def test_a_profile_joined_while_off_is_armed_at_the_next_session() -> None:
    sim = Sim(config()).profile(T0, timezone="UTC", attributes={"birth_date": "--04-04"})
    assert "birthday" not in sim.state.timers
    sim.driver.cfg = config("birthday")
    sim.send(ev("session_start", T0 + HOUR))
    assert sim.state.timers["birthday"] == ms("2026-04-04T10:00")


# --- configuration -------------------------------------------------------------------------------


def test_membership_settings_are_validated_with_file_and_line() -> None:
    text = (
        "membership:\n"
        "  enabled: true\n"
        "  tiers: [silver:500, gold]\n"
        "  tier_basis: visits\n"
        "  expirey: 30d\n"
        "triggers:\n"
        "  birthday:\n"
        "    send_at: '25:00'\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "m.yaml")
    assert str(err.value).splitlines() == [
        "m.yaml:3: membership.tiers[1]: expected a tier as name:threshold like gold:2000, got 'gold'",
        "m.yaml:4: membership.tier_basis: expected one of points, spend, got 'visits'",
        "m.yaml:5: membership.expirey: unknown setting; did you mean 'expiry'?",
        "m.yaml:8: triggers.birthday.send_at: expected a time of day as HH:MM like 10:00, got '25:00'",
    ]


def test_membership_from_a_file() -> None:
    cfg = parse_config("membership:\n  enabled: true\n  tiers: [a:10, b:5]\n", "m.yaml")
    assert cfg.membership.enabled and tiers.ladder(cfg.membership.tiers, "member") == (
        (0.0, "member"),
        (5.0, "b"),
        (10.0, "a"),
    )
