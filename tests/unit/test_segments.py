"""Audiences on triggers, tags, segment_entered/exited and lead scoring, through the core."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from core import scores, segments
from core.config import Config
from core.config_file import ConfigError, parse_config
from core.driver import Driver, Outputs
from core.durations import DAY, HOUR, MINUTE
from core.hooks import bound
from core.model import CustomerState, Event, Profile

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def cfg_of(text: str) -> Config:
    return parse_config(text, "test.yaml")


def view(cid: str, ts: int, eid: str, url: str = "/") -> Event:
    return Event(eid, "page_view", cid, ts, "clickstream", url=url)


def order(cid: str, ts: int, eid: str, total: float) -> Event:
    return Event(eid, "order_placed", cid, ts, "orders", order_id=f"o-{eid}", total=total)


def run(cfg: Config, events: list[Event], until: int | None = None) -> tuple[Driver, Outputs]:
    out = Outputs()
    driver = Driver(cfg, out)
    for ev in sorted(events, key=lambda e: e.ts):
        driver.send(ev)
    if until is not None:
        driver.advance(until)
    return driver, out


# --- zero cost when nothing is configured ----------------------------------------------


def test_the_default_config_binds_no_per_event_work() -> None:
    hooks = bound(Config())
    assert hooks.pre is None and hooks.post is None
    assert segments.TIMER not in hooks.by_timer


def test_audiences_used_only_by_triggers_add_no_per_event_work() -> None:
    cfg = cfg_of(
        """
        audiences: {de: "country == 'DE'"}
        triggers: {welcome: {audience: de}}
        """
    )
    hooks = bound(cfg)
    assert hooks.pre is None and hooks.post is None


# --- audience on a trigger ---------------------------------------------------------------


def test_a_customer_outside_a_triggers_audience_gets_no_decision() -> None:
    cfg = cfg_of(
        """
        audiences: {germans: "country == 'DE'"}
        triggers:
          welcome: {audience: germans}
          nps_detractor: {audience: "order_count >= 1"}
        """
    )
    out = Outputs()
    driver = Driver(cfg, out)
    driver.profile("de", Profile(attributes={"country": "DE"}))
    driver.profile("fr", Profile(attributes={"country": "FR"}))
    driver.send(view("de", T0, "e1"))
    driver.send(view("fr", T0 + 1, "e2"))
    driver.send(Event("n1", "nps", "fr", T0 + 2, "engagement", score=2))
    driver.send(order("fr", T0 + 3, "o1", 20.0))
    driver.send(Event("n2", "nps", "fr", T0 + 4, "engagement", score=2))
    fired = [(d.trigger, d.customer_id, d.source_event_ids) for d in out.decisions]
    # welcome only for the German; the detractor alert only once fr has ordered
    assert ("welcome", "de", ("e1",)) in fired
    assert not [f for f in fired if f[0] == "welcome" and f[1] == "fr"]
    assert [f for f in fired if f[0] == "nps_detractor"] == [("nps_detractor", "fr", ("n2",))]
    # the customer outside was never a candidate: no cooldown mark either
    assert "welcome" not in driver.states["fr"].marks


def test_an_unknown_audience_on_a_trigger_is_a_config_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        cfg_of("triggers:\n  welcome:\n    audience: vips\naudiences:\n  vip: 'revenue > 1'\n")
    assert str(caught.value) == (
        "test.yaml:3: triggers.welcome.audience: unknown name 'vips'; did you mean 'vip'? "
        "(column 1 of 'vips')"
    )


# --- tags ------------------------------------------------------------------------------


def test_tag_rules_set_sticky_tags_and_clear_them() -> None:
    cfg = cfg_of(
        """
        tags:
          buyer: "order_count >= 1"
          big: {set: "revenue >= 100", clear: "days_since_order > 30"}
        triggers: {nps_detractor: {audience: "'big' in tags"}}
        """
    )
    events = [
        view("c", T0, "v1"),
        order("c", T0 + HOUR, "o1", 60.0),
        order("c", T0 + 2 * HOUR, "o2", 50.0),
        Event("n1", "nps", "c", T0 + 3 * HOUR, "engagement", score=1),
        view("c", T0 + 40 * DAY, "v2"),
        Event("n2", "nps", "c", T0 + 40 * DAY + 1, "engagement", score=1),
    ]
    driver, out = run(cfg, events[:4])
    assert driver.states["c"].tags == ["buyer", "big"]
    assert [d.source_event_ids for d in out.decisions if d.trigger == "nps_detractor"] == [("n1",)]
    for ev in events[4:]:
        driver.send(ev)
    assert driver.states["c"].tags == ["buyer"]  # cleared: 40 days since the last order
    assert [d.source_event_ids for d in out.decisions if d.trigger == "nps_detractor"] == [("n1",)]


def test_profile_tags_count_as_tags() -> None:
    cfg = cfg_of("triggers: {welcome: {audience: \"'vip' in tags\"}}")
    out = Outputs()
    driver = Driver(cfg, out)
    driver.profile("a", Profile(attributes={"tags": ["vip"]}))
    driver.send(view("a", T0, "e1"))
    driver.send(view("b", T0, "e2"))
    assert [d.customer_id for d in out.decisions] == ["a"]


# --- segment_entered / segment_exited ----------------------------------------------------

SEGMENTS = """
audiences:
  vip: "revenue >= 100"
  active_vip: "vip and days_since_active < 14"
triggers:
  segment_entered: {audiences: [vip, active_vip]}
  segment_exited: {audiences: [active_vip], recheck: 1d}
"""


def test_entering_an_audience_fires_once_and_leaving_on_the_clock_fires_exit() -> None:
    cfg = cfg_of(SEGMENTS)
    events = [
        order("c", T0, "o1", 60.0),  # 60: not yet a vip
        order("c", T0 + HOUR, "o2", 50.0),  # 110: enters vip and active_vip
        view("c", T0 + 2 * HOUR, "v1"),  # still in both: nothing new
    ]
    driver, out = run(cfg, events, until=T0 + 20 * DAY)
    got = [
        (d.trigger, d.payload["audience"], d.decided_at)
        for d in out.decisions
        if d.trigger.startswith("segment")
    ]
    # active_vip ends 14 days after the last activity (T0+2h): the daily re-check after
    # that sees it, at a whole number of days after the re-check timer was first armed
    exit_at = next(g[2] for g in got if g[0] == "segment_exited")
    assert got == [
        ("segment_entered", "vip", T0 + HOUR),
        ("segment_entered", "active_vip", T0 + HOUR),
        ("segment_exited", "active_vip", exit_at),
    ]
    assert T0 + 2 * HOUR + 14 * DAY <= exit_at < T0 + 2 * HOUR + 15 * DAY
    assert driver.states["c"].segments == ["vip", "!active_vip"]  # "!": seen outside
    # deterministic ids: the same traffic again gives the same decisions
    _, again = run(cfg, events, until=T0 + 20 * DAY)
    assert [d.action_id for d in again.decisions] == [d.action_id for d in out.decisions]


def test_switching_watching_on_records_existing_members_without_firing() -> None:
    before = cfg_of('audiences: {vip: "revenue >= 100"}')  # defined, not watched yet
    out = Outputs()
    driver = Driver(before, out)
    driver.send(order("old", T0, "o1", 500.0))  # a vip before anyone watched
    driver.send(view("later", T0, "l1"))  # not a vip yet
    driver.cfg = cfg_of(
        'audiences: {vip: "revenue >= 100"}\ntriggers: {segment_entered: {audiences: [vip]}}'
    )
    driver.send(view("old", T0 + HOUR, "o2"))  # still a vip: recorded, no "became a vip"
    driver.send(order("new", T0 + HOUR, "n1", 500.0))  # first event, already a vip: enters
    driver.send(view("later", T0 + HOUR, "l2"))  # seen outside now
    driver.send(order("later", T0 + 2 * HOUR, "l3", 500.0))  # so this is an entry
    entered = [d.customer_id for d in out.decisions if d.trigger == "segment_entered"]
    assert entered == ["new", "later"]
    assert driver.states["old"].segments == ["vip"]
    # the topic still records that old is inside (gauges count from it)
    assert [(g.customer_id, g.change) for g in out.segment_changes] == [
        ("old", "entered"),
        ("new", "entered"),
        ("later", "entered"),
    ]


def test_only_customers_in_a_watched_audience_are_rechecked_on_the_clock() -> None:
    cfg = cfg_of(SEGMENTS)
    driver, _ = run(cfg, [view("c", T0, "v1")], until=T0 + 200 * DAY)
    assert segments.TIMER not in driver.states["c"].timers
    assert driver.timers_fired == 0
    driver, _ = run(cfg, [order("v", T0, "o1", 500.0)], until=T0 + 20 * DAY)
    assert driver.states["v"].segments == ["vip", "!active_vip"]  # left active_vip on day 14
    assert segments.TIMER in driver.states["v"].timers  # still a vip: still watched
    assert 19 <= driver.timers_fired - _journey_timers(driver) <= 21  # one a day


def _journey_timers(driver: Driver) -> int:
    return 0  # the journey's at_risk timer is due after 30 days: none by day 20


def test_no_segment_work_without_watched_audiences() -> None:
    cfg = cfg_of('audiences: {vip: "revenue >= 100"}')
    driver, out = run(cfg, [order("c", T0, "o1", 500.0)], until=T0 + 3 * DAY)
    assert not [d for d in out.decisions if d.trigger.startswith("segment")]
    assert driver.states["c"].segments == []
    assert segments.TIMER not in driver.states["c"].timers


# --- lead scoring ------------------------------------------------------------------------

LEADS = """
scores:
  lead:
    half_life: 7d
    mql: 45
    requalify_below: 20
    points:
      - {on: page_view, url: /pricing, points: 20}
      - {on: page_view, url: /demo, points: 40}
      - {on: email_click, points: 5}
    fit:
      - {when: "attributes.company_size >= 200", points: 10}
triggers:
  lead_qualified:
    owners: [ann, bob, cid]
    territory_attribute: region
    territories: ["emea:eva", "emea:emil", "amer:al"]
"""


def test_lead_score_decays_by_half_life() -> None:
    state = CustomerState("c")
    scores.add_points(state, 40, T0, 7 * DAY)
    assert scores.lead_behaviour(state, T0 + 7 * DAY, 7 * DAY) == pytest.approx(20)
    assert scores.lead_behaviour(state, T0 + 14 * DAY, 7 * DAY) == pytest.approx(10)
    scores.add_points(state, 10, T0 + 7 * DAY, 7 * DAY)  # 20 left + 10
    assert scores.lead_behaviour(state, T0 + 7 * DAY, 7 * DAY) == pytest.approx(30)
    # an older event's points, added late, give the same score as in order
    other = CustomerState("d")
    scores.add_points(other, 10, T0 + 7 * DAY, 7 * DAY)
    scores.add_points(other, 40, T0, 7 * DAY)
    assert scores.lead_behaviour(other, T0 + 9 * DAY, 7 * DAY) == pytest.approx(
        scores.lead_behaviour(state, T0 + 9 * DAY, 7 * DAY)
    )


def test_crossing_the_mql_fires_once_with_owner_and_score() -> None:
    cfg = cfg_of(LEADS)
    out = Outputs()
    driver = Driver(cfg, out)
    driver.profile("lead-1", Profile(attributes={"company_size": 500, "region": "EMEA"}))
    driver.send(view("lead-1", T0, "p1", "/pricing"))  # 20 + fit 10 = 30
    driver.send(view("lead-1", T0 + HOUR, "p2", "/pricing"))  # ~40 + 10 = ~50: qualifies
    driver.send(view("lead-1", T0 + 2 * HOUR, "p3", "/demo"))  # higher still: no second one
    leads = [d for d in out.decisions if d.trigger == "lead_qualified"]
    assert len(leads) == 1
    (lead,) = leads
    expected = 20 * 0.5 ** (1 / (7 * 24)) + 20 + 10
    assert lead.payload["score"] == round(expected, 1)
    assert lead.payload["territory"] == "EMEA"
    assert lead.payload["owner"] in ("eva", "emil")
    assert lead.source_event_ids == ("p2",)
    assert lead.channel == "slack"


def test_a_lead_below_requalify_below_may_qualify_again_with_the_next_owner() -> None:
    cfg = cfg_of(LEADS)
    out = Outputs()
    driver = Driver(cfg, out)
    cid = "lead-2"
    driver.send(view(cid, T0, "d1", "/demo"))
    driver.send(view(cid, T0 + MINUTE, "p1", "/pricing"))  # ~60: qualifies
    driver.send(view(cid, T0 + 10 * DAY, "e1", "/pricing"))  # ~22.7 + 20, was >= 20: no reset
    driver.send(view(cid, T0 + 40 * DAY, "d2", "/demo"))  # ~2.2 < 20: reset; 42.2 < 45
    driver.send(view(cid, T0 + 40 * DAY + MINUTE, "d3", "/demo"))  # ~82: qualifies again
    leads = [d for d in out.decisions if d.trigger == "lead_qualified"]
    assert [d.source_event_ids for d in leads] == [("p1",), ("d3",)]
    assert [d.payload["qualification"] for d in leads] == [1, 2]
    first, second = (d.payload["owner"] for d in leads)
    owners = ["ann", "bob", "cid"]
    assert owners.index(second) == (owners.index(first) + 1) % 3  # round robin per lead
    assert leads[0].action_id != leads[1].action_id


def test_round_robin_is_fair_across_leads_and_the_same_everywhere() -> None:
    owners = ("ann", "bob", "cid")
    first = Counter(scores.owner(f"lead-{i}", 0, owners) for i in range(3000))
    assert set(first) == set(owners)
    assert all(900 <= n <= 1100 for n in first.values()), first
    # per lead, qualifications go round: 3 in a row reach each owner once
    for i in range(50):
        assert {scores.owner(f"lead-{i}", n, owners) for n in range(3)} == set(owners)
    # no hidden counter: asking again gives the same owner (replay, another worker)
    assert scores.owner("lead-7", 4, owners) == scores.owner("lead-7", 4, owners)


def test_a_later_order_converts_the_lead() -> None:
    cfg = cfg_of(LEADS)
    events = [
        view("c", T0, "d1", "/demo"),
        view("c", T0 + MINUTE, "p1", "/pricing"),
        order("c", T0 + 20 * DAY, "o1", 900.0),  # within attribution_window (30d)
    ]
    _, out = run(cfg, events)
    conversions = [c for c in out.conversions if c.trigger == "lead_qualified"]
    assert [(c.revenue, c.group) for c in conversions] == [(900.0, "sent")]


def test_lead_in_expressions_is_behaviour_plus_fit() -> None:
    cfg = cfg_of(LEADS + '\naudiences:\n  hot: "lead >= 30"\n')
    compiled = segments.bound(cfg)
    state = CustomerState("c", profile=Profile(attributes={"company_size": 300}))
    scores.add_points(state, 40, T0, 7 * DAY)
    assert compiled.lead_score(state, T0 + 7 * DAY) == 30.0  # 20 + fit 10
    assert compiled.audiences["hot"](state, T0 + 7 * DAY)
    assert not compiled.audiences["hot"](state, T0 + 8 * DAY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scores: {lead: {points: [{on: page_veiw, points: 1}]}}",
            "test.yaml:1: scores.lead.points[0].on: unknown event type 'page_veiw'; "
            "did you mean 'page_view'?",
        ),
        (
            "scores: {lead: {mql: 10, requalify_below: 10, points: [{on: nps, points: 1}]}}",
            "test.yaml:1: scores.lead.requalify_below: expected less than mql (10), got 10",
        ),
        (
            "scores: {lead: {points: [{on: nps, points: 1}], fit: [{when: 'lead > 1', points: 1}]}}",
            "test.yaml:1: scores.lead.fit[0].when: 'lead' cannot be used here: a fit rule cannot "
            "use the score it makes (column 1 of 'lead > 1')",
        ),
        (
            "triggers: {lead_qualified: {territories: [emea]}}",
            "test.yaml:1: triggers.lead_qualified.territories: expected 'territory:owner' like "
            "'emea:alice', got 'emea'",
        ),
        (
            "triggers: {segment_exited: {audiences: [vip]}}",
            "test.yaml:1: triggers.segment_exited.audiences: no audience 'vip' (none defined)",
        ),
        (
            "tags: {big: {sett: 'true'}}",
            "test.yaml:1: tags.big.sett: unknown setting; did you mean 'set'?",
        ),
    ],
)
def test_score_and_segment_mistakes_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cfg_of(text)
    assert str(caught.value).splitlines()[0] == message


# --- the segment-changes topic -----------------------------------------------------------


def test_segment_changes_record_entries_exits_and_lead_qualifications() -> None:
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "docs/schemas/segment-changes.json").read_text()
    )
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    cfg = cfg_of(SEGMENTS + LEADS.split("triggers:")[0])  # audiences watched, and leads scored
    events = [
        order("c", T0, "o1", 60.0),
        order("c", T0 + HOUR, "o2", 50.0),
        view("l", T0, "d1", "/demo"),
        view("l", T0 + MINUTE, "p1", "/pricing"),
        view("l", T0 + 40 * DAY, "p2", "/pricing"),
    ]
    _, out = run(cfg, events, until=T0 + 20 * DAY)
    got = [(g.customer_id, g.kind, g.name, g.change, g.event_id) for g in out.segment_changes]
    assert got == [
        ("l", "lead", "mql", "qualified", "p1"),
        ("c", "audience", "vip", "entered", "o2"),
        ("c", "audience", "active_vip", "entered", "o2"),
        ("c", "audience", "active_vip", "exited", None),  # the re-check timer saw it
        ("l", "lead", "mql", "cooled", "p2"),
    ]
    for change in out.segment_changes:
        record = json.loads(json.dumps(change.to_record()))
        assert not list(validator.iter_errors(record)), record


def test_an_anonymous_visitors_lead_points_and_tags_follow_them_when_they_sign_up() -> None:
    from core import identity

    cfg = cfg_of(LEADS)
    visitor = CustomerState("anon-1")
    scores.add_points(visitor, 40, T0, 7 * DAY)  # a demo request before signing up
    visitor.tags = ["webinar"]
    state = CustomerState("c")
    scores.add_points(state, 5, T0 + 7 * DAY, 7 * DAY)
    identity.merge(state, visitor, T0 + 7 * DAY, cfg)
    assert scores.lead_behaviour(state, T0 + 7 * DAY, 7 * DAY) == pytest.approx(5 + 20)
    assert state.tags == ["webinar"]
    identity.merge(state, visitor, T0 + 7 * DAY, cfg)  # merged once, however often delivered
    assert scores.lead_behaviour(state, T0 + 7 * DAY, 7 * DAY) == pytest.approx(25)


def test_tags_lead_and_segments_survive_the_changelog_and_old_records_decode() -> None:
    from state import codec

    state = CustomerState("c", tags=["vip"], lead=[42.5, T0, 1, 2], segments=["vip"])
    back = codec.decode(codec.encode(state))
    assert (back.tags, back.lead, back.segments) == (["vip"], [42.5, T0, 1, 2], ["vip"])
    old = orjson_loads(codec.encode(CustomerState("d")))[:-3]  # written before these fields
    restored = codec.from_obj(old)
    assert (restored.tags, restored.lead, restored.segments) == ([], [], [])


def orjson_loads(raw: bytes) -> list[object]:
    import orjson

    value = orjson.loads(raw)
    assert isinstance(value, list)
    return value


def test_kairos_triggers_validate_names_every_expression_mistake_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kairos.cli import main as kairos

    path = tmp_path / "bad.yaml"
    path.write_text(
        "audiences:\n"
        '  vip: "revnue >= 500"\n'
        "triggers:\n"
        "  win_back:\n"
        "    audience: \"stage == 'loyal' and vip\"\n"
    )
    assert kairos(["triggers", "validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{path}:2: audiences.vip: unknown name 'revnue'; did you mean 'revenue'? "
        "(column 1 of 'revnue >= 500')",
        f"{path}:5: triggers.win_back.audience: stage is never 'loyal' (it is one of new, "
        "awareness, interest, consideration, purchase, loyalty, at_risk, churned); did you "
        "mean 'loyalty'? (column 10 of \"stage == 'loyal' and vip\")",
        f"{path}: 2 problem(s)",
    ]
    assert "Traceback" not in captured.err + captured.out
    shipped = Path(__file__).resolve().parents[2] / "config" / "audiences.yaml"
    assert kairos(["triggers", "validate", str(shipped)]) == 0


def test_a_deal_won_converts_the_qualified_lead_and_nothing_else() -> None:
    cfg = cfg_of(LEADS)
    events = [
        view("c", T0, "d1", "/demo"),
        view("c", T0 + MINUTE, "p1", "/pricing"),  # qualifies (and a welcome fired before)
        Event(
            "w1", "deal_won", "c", T0 + 10 * DAY, "engagement", order_id="deal-1", total=12_000.0
        ),
        Event("w2", "deal_won", "c", T0 + 11 * DAY, "engagement", order_id="deal-2", total=5.0),
    ]
    _, out = run(cfg, events)
    assert [(c.trigger, c.order_id, c.revenue) for c in out.conversions] == [
        ("lead_qualified", "deal-1", 12_000.0)  # once; the welcome touch is left to orders
    ]
