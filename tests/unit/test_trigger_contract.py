"""A trigger is one module plus one line: the declaration is the only place it is described.

A throwaway trigger in a temporary package (outside the project) is registered
with one line and is then validated in a config file, configured, fired, given
template variables and documented, with nothing else edited. The README's table
and the shipped config's comments must match what the declarations give.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from core import engine, identity
from core.config import Config
from core.config_file import ConfigError, config_to_dict, parse_config
from core.context import Ctx
from core.durations import DAY, MINUTE
from core.model import CustomerState, Event, StageChange
from core.templates import TEMPLATE_VARS, render, template_vars
from core.trigger import TriggerDoc, TriggerSpec
from core.trigger_table import markdown_table, replace_table
from core.triggers import SPECS, TRIGGER_TYPES, register, unregister
from core.triggers.welcome import WelcomeConfig

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z: outside the default quiet hours

# The whole trigger: config type, hooks and declaration, in one module of its own.
PAGE_STREAK = """
from dataclasses import dataclass

from core.config import AT_LEAST_ONE, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import MINUTE
from core.model import Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "page_streak"
TIMER = "page_streak"
_PAGES = "page_streak.pages"


@dataclass(frozen=True, slots=True)
class PageStreakConfig(TriggerConfig):
    min_pages: int = setting(2, limit=AT_LEAST_ONE)
    quiet_for: int = duration(15 * MINUTE)
    mood: str = setting("calm", choices=("calm", "eager"))
    channel: str = "email"
    template: str = "{pages} pages, then quiet"


def on_event(ctx: Ctx, ev: Event, cfg: PageStreakConfig, late: bool) -> None:
    pages = ctx.state.marks[_PAGES] = ctx.state.marks.get(_PAGES, 0) + 1
    if pages >= cfg.min_pages:
        ctx.set_timer(TIMER, ev.ts + cfg.quiet_for)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: PageStreakConfig) -> None:
    pages = ctx.state.marks.pop(_PAGES, 0)
    ctx.decide(
        NAME,
        cfg,
        due,
        reason=f"{pages} pages, then quiet",
        payload={"pages": pages, "mood": cfg.mood},
        sources=(),
        cause_ts=due,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=PageStreakConfig,
    template_vars=frozenset({"pages", "mood"}),
    events=frozenset({"page_view"}),
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    doc=TriggerDoc(
        fires_when="`min_pages` page views, then `quiet_for` without one",
        key_parameters=("min_pages", "quiet_for", "mood"),
        exits="a page view re-arms it",
    ),
)
"""


@pytest.fixture
def page_streak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The module above, importable from a temporary package; unregistered afterwards."""
    package = tmp_path / "throwaway_triggers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "page_streak.py").write_text(PAGE_STREAK)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("throwaway_triggers.page_streak")
    yield module
    if "page_streak" in SPECS:
        unregister("page_streak")
    for name in ("throwaway_triggers.page_streak", "throwaway_triggers"):
        sys.modules.pop(name, None)


def page_view(ts: int, event_id: str) -> Event:
    return Event(event_id, "page_view", "c1", ts, "clickstream")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "t.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_throwaway_trigger_is_one_module_plus_one_line(page_streak: ModuleType) -> None:
    assert "page_streak" not in Config().triggers

    register(page_streak.SPEC)  # the one line

    # configured: a file sets it, the rest keeps the declared defaults
    cfg = parse_config(
        "triggers:\n  page_streak:\n    min_pages: 3\n    template: '{first_name}: {pages}'\n",
        "t.yaml",
    )
    assert cfg.triggers["page_streak"] == page_streak.PageStreakConfig(
        min_pages=3, template="{first_name}: {pages}"
    )
    assert TRIGGER_TYPES["page_streak"] is page_streak.PageStreakConfig
    assert config_to_dict(Config())["triggers"]["page_streak"]["quiet_for"] == "15m"

    # validated: unknown settings and bad values, each with file:line
    assert problems(
        """\
        triggers:
          page_streak:
            min_page: 3
            min_pages: 0
            quiet_for: soon
            mood: angry
            template: "{cart_value}"
        """
    ) == [
        "t.yaml:3: triggers.page_streak.min_page: unknown setting; did you mean 'min_pages'?",
        "t.yaml:4: triggers.page_streak.min_pages: expected a whole number of 1 or more, got 0",
        "t.yaml:5: triggers.page_streak.quiet_for: expected a duration like 30m, 2h or 7d, "
        "got 'soon'",
        "t.yaml:6: triggers.page_streak.mood: expected one of calm, eager, got 'angry'",
        "t.yaml:7: triggers.page_streak.template: expected template variables of page_streak "
        "(action_id, customer_id, email, first_name, locale, mood, pages, phone, timezone, "
        "trigger), got {cart_value}",
    ]

    # fired: by on_event (arms its timer) and on_timer (decides), under its config
    state = CustomerState("c1")
    steps = [engine.on_event(state, page_view(T0 + i, f"e{i}"), T0 + i, cfg) for i in range(3)]
    assert [[t.kind for t in step.timers] for step in steps] == [[], [], ["page_streak"]]
    due = state.timers["page_streak"]
    assert due == T0 + 2 + 15 * MINUTE
    (decision,) = engine.on_timer(state, "page_streak", due, due, cfg).decisions
    assert (decision.trigger, decision.channel, decision.status) == ("page_streak", "email", "send")
    off = replace(cfg.triggers["page_streak"], enabled=False)
    disabled = Config(triggers={**cfg.triggers, "page_streak": off})
    quiet = CustomerState("c2")
    for i in range(3):
        engine.on_event(quiet, page_view(T0 + i, f"q{i}"), T0 + i, disabled)
    assert "page_streak" not in quiet.timers

    # given template variables: its own and the common ones, rendered from the payload
    assert {"pages", "mood", "customer_id"} <= TEMPLATE_VARS["page_streak"]
    assert template_vars("page_streak") == TEMPLATE_VARS["page_streak"]
    values = {**decision.payload, "first_name": "Ada"}
    assert render(cfg.triggers["page_streak"].template, values) == "Ada: 3"

    # documented: a row of the generated README table, defaults read from its config
    row = markdown_table(SPECS.values()).splitlines()[-1]
    assert row == (
        "| `page_streak` | `min_pages` page views, then `quiet_for` without one "
        "| `min_pages` 2, `quiet_for` 15m, `mood` calm | email | a page view re-arms it |"
    )


def test_the_readme_table_is_the_one_the_declarations_give() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generated = replace_table(readme, markdown_table(SPECS.values()))
    assert generated == readme, "README.md is stale: run python scripts/readme_triggers.py"


def test_the_shipped_config_lists_each_triggers_template_variables() -> None:
    text = (ROOT / "config" / "triggers.yaml").read_text(encoding="utf-8")
    listed = {
        name: set(re.findall(r"\{(\w+)\}", extras))
        for extras, name in re.findall(r"# Template extras: (.*)\n  (\w+):", text)
    }
    assert listed == {name: set(spec.template_vars) for name, spec in SPECS.items()}


# --- what a declaration must say ----------------------------------------------------------


def _stage_hook(ctx: Ctx, change: StageChange, cfg: WelcomeConfig) -> None:
    pass


def _spec(**overrides: object) -> TriggerSpec[WelcomeConfig]:
    fields: dict[str, object] = {
        "name": "greeting",
        "config": WelcomeConfig,
        "template_vars": frozenset(),
        "doc": TriggerDoc("never", ()),
        "stages": frozenset({"awareness"}),
        "on_stage": _stage_hook,
    }
    return TriggerSpec(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stages": frozenset()}, "stages and on_stage go together"),
        ({"events": frozenset({"page_view"})}, "events and on_event go together"),
        ({"stages": frozenset({"asleep"})}, "unknown stages ['asleep']"),
        ({"name": "two words"}, "its name must be a word"),
        ({"config": dict}, "config must be a dataclass subclassing"),
        ({"doc": TriggerDoc("x", ("delay",))}, "doc.key_parameters not settings"),
    ],
)
def test_a_declaration_that_does_not_add_up_is_refused(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _spec(**overrides)


def test_names_and_timer_kinds_are_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(SPECS["welcome"])
    clash = replace(SPECS["churn_alert"], name="churn_copy")
    with pytest.raises(ValueError, match="timer kind 'churn_alert' is churn_alert's"):
        register(clash)
    assert "churn_copy" not in SPECS


# --- hooks run only for enabled triggers, with their own config ---------------------------


def _off(cfg: Config, name: str) -> Config:
    return Config(triggers={**cfg.triggers, name: replace(cfg.triggers[name], enabled=False)})


def _anonymous_cart() -> CustomerState:
    anon = CustomerState("anon-1")
    cart = Event("a1", "add_to_cart", "anon-1", T0, "clickstream", product_id="p1", price=9.0)
    engine.on_event(anon, cart, T0, Config())
    return anon


def test_an_adopted_anonymous_cart_gets_its_deadline_only_while_abandoned_cart_is_on() -> None:
    for cfg, armed in ((Config(), True), (_off(Config(), "abandoned_cart"), False)):
        customer = CustomerState("c1")
        step = identity.merge(customer, _anonymous_cart(), T0 + MINUTE, cfg)
        assert customer.cart == {"p1": [1, 9.0]}
        assert ("abandoned_cart" in customer.timers) is armed
        assert [t.kind for t in step.timers] == (["abandoned_cart"] if armed else [])


def test_a_customer_keeping_their_own_cart_gets_no_new_deadline_from_a_merge() -> None:
    customer = CustomerState("c1")
    own = Event("e1", "add_to_cart", "c1", T0, "clickstream", product_id="mine", price=1.0)
    engine.on_event(customer, own, T0, Config())
    due = customer.timers.pop("abandoned_cart")  # as if it had fired
    step = identity.merge(customer, _anonymous_cart(), due + 1, Config())
    assert step.timers == [] and "abandoned_cart" not in customer.timers


def _went_at_risk(cfg: Config) -> list[str]:
    """The triggers deciding when a one-time purchaser goes at_risk."""
    state = CustomerState("c1")
    order = Event("o1", "order_placed", "c1", T0, "orders", order_id="o1", total=10.0)
    engine.on_event(state, order, T0, cfg)
    due = state.timers["journey"]
    assert due == T0 + 30 * DAY
    return [d.trigger for d in engine.on_timer(state, "journey", due, due, cfg).decisions]


def test_churn_alert_hands_at_risk_to_win_back_only_when_asked_and_win_back_is_on() -> None:
    asked = Config()
    churn = replace(asked.triggers["churn_alert"], win_back_offer=True)
    asked = Config(triggers={**asked.triggers, "churn_alert": churn})
    assert _went_at_risk(asked) == ["churn_alert", "win_back"]
    assert _went_at_risk(Config()) == ["churn_alert"]
    assert _went_at_risk(_off(asked, "win_back")) == ["churn_alert"]
    assert _went_at_risk(_off(asked, "churn_alert")) == []
