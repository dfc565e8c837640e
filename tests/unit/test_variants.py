"""Message variants (``core.variants``): stable weighted assignment, independent of the
holdout, applied to every setting a variant overrides, recorded in actions and conversions."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import count
from typing import Any

import pytest

from channels.actions import Action, action_from_record
from channels.decision import template
from core.config import Config
from core.config_file import ConfigError, config_to_dict, parse_config
from core.driver import Driver, Outputs
from core.durations import HOUR, MINUTE
from core.hooks import Hooks
from core.model import Event
from core.policy import in_holdout
from core.triggers import SPECS
from core.variants import Variant, choose, share

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z: outside the default quiet hours
_ids = count(1)

CARTS = """
triggers:
  abandoned_cart:
    holdout: 0.2
    variants:
      A: {}
      B:
        weight: 3
        delay: 2h
        channel: email
        template: "Still there? {item_count} item(s) waiting"
"""

OFFERS = """
triggers:
  limited_time_offer:
    variants:
      ten: {discount_percent: 10}
      twenty: {discount_percent: 20, valid_for: 6h}
"""


def only(text: str, trigger: str) -> Config:
    cfg = parse_config(text, "test.yaml")
    triggers = {n: replace(t, enabled=n == trigger) for n, t in cfg.triggers.items()}
    return replace(cfg, triggers=triggers)


def ev(etype: str, ts: int, cid: str, **fields: Any) -> Event:
    return Event(f"e{next(_ids)}", etype, cid, ts, **fields)


# --- assignment ------------------------------------------------------------------------


def test_assignment_is_stable_and_follows_the_weights() -> None:
    variants = {"A": Variant(1.0), "B": Variant(3.0)}
    customers = [f"c{i}" for i in range(40_000)]
    first = [choose(variants, "abandoned_cart", c) for c in customers]
    assert first == [choose(variants, "abandoned_cart", c) for c in customers]
    counts = Counter(first)
    # Binomial(40000, 0.25): sd ~87, so +-500 is over 5 sd.
    assert abs(counts["A"] - 10_000) < 500, counts
    assert share(variants, "B") == 0.75
    # Another trigger's split is another draw: not the same customers in A.
    other = [choose(variants, "welcome", c) for c in customers]
    agree = sum(a == b for a, b in zip(first, other, strict=True)) / len(customers)
    assert abs(agree - (0.25**2 + 0.75**2)) < 0.01


def test_assignment_is_independent_of_the_holdout() -> None:
    """A chi-square test of independence on the 2x2 table holdout x variant."""
    variants = {"A": Variant(1.0), "B": Variant(1.0)}
    table: Counter[tuple[bool, str]] = Counter()
    n = 60_000
    for i in range(n):
        cid = f"cust-{i}"
        table[in_holdout(cid, "abandoned_cart", 0.3), choose(variants, "abandoned_cart", cid)] += 1
    chi2 = 0.0
    for held in (True, False):
        for name in ("A", "B"):
            rows = table[held, "A"] + table[held, "B"]
            cols = table[True, name] + table[False, name]
            expected = rows * cols / n
            chi2 += (table[held, name] - expected) ** 2 / expected
    assert chi2 < 10.83, (chi2, table)  # p > 0.001 with 1 degree of freedom
    # And the share of B is the same inside and outside the holdout.
    inside = table[True, "B"] / (table[True, "A"] + table[True, "B"])
    outside = table[False, "B"] / (table[False, "A"] + table[False, "B"])
    assert abs(inside - outside) < 0.015


# --- applied where the trigger decides ----------------------------------------------------


def carts_run(customers: int) -> Outputs:
    out = Outputs()
    driver = Driver(only(CARTS, "abandoned_cart"), out)
    for i in range(customers):
        driver.send(ev("add_to_cart", T0, f"c{i}", product_id="p", quantity=1, price=10.0))
    driver.advance(T0 + 3 * HOUR)
    return out


def test_each_variant_decides_with_its_own_delay_channel_and_name() -> None:
    out = carts_run(400)
    assert len(out.decisions) == 400
    by_variant = Counter(d.variant for d in out.decisions)
    assert set(by_variant) == {"A", "B"} and by_variant["B"] > by_variant["A"]
    for d in out.decisions:
        expected = choose({"A": Variant(1.0), "B": Variant(3.0)}, "abandoned_cart", d.customer_id)
        assert d.variant == expected
        if d.variant == "A":
            assert (d.channel, d.decided_at) == ("push", T0 + 30 * MINUTE)
        else:
            assert (d.channel, d.decided_at) == ("email", T0 + 2 * HOUR)
        assert d.to_record()["variant"] == d.variant
    # Held-out customers get a variant too: each variant has its own control group.
    held = Counter(d.variant for d in out.decisions if d.status == "held_out")
    assert held["A"] > 0 and held["B"] > 0


def test_the_dispatcher_renders_the_variants_template() -> None:
    cfg = only(CARTS, "abandoned_cart")
    out = carts_run(40)
    texts = {}
    for d in out.decisions:
        action = action_from_record(d.to_record())
        assert isinstance(action, Action) and action.variant == d.variant
        assert action_from_record(action.to_record()) == action  # through the schedule
        texts[d.variant] = template(cfg, action)
    assert texts["B"] == "Still there? {item_count} item(s) waiting"
    assert texts["A"] == cfg.triggers["abandoned_cart"].template


def test_conversions_carry_the_variant() -> None:
    out = Outputs()
    driver = Driver(only(CARTS, "abandoned_cart"), out)
    for i in range(60):
        driver.send(ev("add_to_cart", T0, f"c{i}", product_id="p", quantity=1, price=10.0))
    driver.advance(T0 + 3 * HOUR)
    for i in range(60):
        driver.send(ev("order_placed", T0 + 4 * HOUR, f"c{i}", order_id=f"o{i}", total=10.0))
    decided = {d.action_id: d.variant for d in out.decisions}
    assert len(out.conversions) == 60
    for c in out.conversions:
        assert c.variant == decided[c.action_id] and c.variant is not None
        assert c.to_record()["variant"] == c.variant


def offer_run() -> tuple[Outputs, Driver]:
    out = Outputs()
    driver = Driver(only(OFFERS, "limited_time_offer"), out)
    for i in range(100):
        for k in range(3):  # three views of one product: the offer fires
            driver.send(ev("product_view", T0 + k * MINUTE, f"c{i}", product_id="p1"))
    return out, driver


def test_offer_variants_change_discount_and_validity() -> None:
    out, _ = offer_run()
    assert len(out.decisions) == 100
    seen = set()
    for d in out.decisions:
        seen.add(d.variant)
        percent, valid = (10, 2 * HOUR) if d.variant == "ten" else (20, 6 * HOUR)
        assert d.payload["discount_percent"] == percent
        assert d.payload["expires_at"] == d.decided_at + valid
    assert seen == {"ten", "twenty"}


def test_a_redeemed_code_converts_its_offer_and_counts_the_discount() -> None:
    out, driver = offer_run()
    d = out.decisions[0]
    code = d.payload["code"]
    # 90.0 paid after the discount: 10% off means 100 before, 10 given away; 20%: 22.5.
    driver.send(
        ev(
            "order_placed",
            T0 + HOUR,
            d.customer_id,
            order_id="o1",
            total=90.0,
            properties={"code": code},
        )
    )
    (conv,) = out.conversions
    assert (conv.action_id, conv.variant) == (d.action_id, d.variant)
    assert conv.discount == (10.0 if d.variant == "ten" else 22.5)
    assert conv.to_record()["discount"] == conv.discount
    # An order without the code converts too, with no discount.
    other = out.decisions[1]
    driver.send(ev("order_placed", T0 + HOUR, other.customer_id, order_id="o2", total=50.0))
    assert out.conversions[1].discount == 0.0 and "discount" not in out.conversions[1].to_record()


# --- without variants nothing changes -----------------------------------------------------


def test_without_variants_hooks_are_bound_as_they_are_and_records_unchanged() -> None:
    cfg = Config()
    hooks = Hooks(cfg)
    bound = {hook for pairs in hooks.by_event.values() for hook, _ in pairs}
    assert bound <= {spec.on_event for spec in SPECS.values()}
    out = Outputs()
    driver = Driver(cfg, out)
    driver.send(ev("add_to_cart", T0, "c1", product_id="p", quantity=1, price=10.0))
    driver.advance(T0 + HOUR)
    (d,) = [d for d in out.decisions if d.trigger == "abandoned_cart"]
    assert d.variant is None and "variant" not in d.to_record()


def test_variants_hooks_are_wrapped_only_for_their_trigger() -> None:
    hooks = Hooks(only(CARTS, "abandoned_cart"))
    ((hook, _),) = hooks.by_event["add_to_cart"]
    assert hook is not SPECS["abandoned_cart"].on_event


# --- the file ----------------------------------------------------------------------------


def test_variants_read_from_the_file_and_written_back() -> None:
    cfg = parse_config(CARTS, "x.yaml")
    variants = cfg.triggers["abandoned_cart"].variants
    assert variants["B"] == Variant(
        3.0,
        {
            "delay": 2 * HOUR,
            "channel": "email",
            "template": "Still there? {item_count} item(s) waiting",
        },
    )
    assert config_to_dict(cfg)["triggers"]["abandoned_cart"]["variants"]["B"]["delay"] == "2h"
    assert (
        parse_config("triggers: {welcome: {variants: {}}}", "x").triggers["welcome"].variants == {}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "triggers:\n  abandoned_cart:\n    variants:\n      A: {}\n      B: {weight: 0}\n",
            "x.yaml:5: triggers.abandoned_cart.variants.B.weight: expected a weight above 0, "
            "like 1 or 0.5, got 0",
        ),
        (
            "triggers:\n  abandoned_cart:\n    variants:\n      A: {}\n      B:\n"
            "        discount_percent: 5\n",
            "x.yaml:6: triggers.abandoned_cart.variants.B.discount_percent: unknown variant "
            "setting of abandoned_cart; valid: weight, template, channel, delay",
        ),
        (
            "triggers:\n  win_back:\n    variants:\n      A: {}\n      B: {valid_for: 30}\n",
            "x.yaml:5: triggers.win_back.variants.B.valid_for: expected a duration with a unit "
            "like 30s, 30m or 30d, got 30",
        ),
        (
            "triggers:\n  welcome:\n    variants:\n      A: {}\n      B: {channel: pigeon}\n",
            "x.yaml:5: triggers.welcome.variants.B.channel: expected a channel",
        ),
        (
            "triggers:\n  welcome:\n    variants:\n      only: {template: hi}\n",
            "x.yaml:4: triggers.welcome.variants: expected two or more variants to compare",
        ),
        (
            "triggers:\n  welcome:\n    variants: [A, B]\n",
            "x.yaml:3: triggers.welcome.variants: expected a mapping",
        ),
    ],
)
def test_bad_variants_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert len(info.value.problems) == 1, info.value.problems
    assert str(info.value.problems[0]).startswith(message), str(info.value.problems[0])


def test_records_with_variants_and_discounts_validate_against_the_contract() -> None:
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    schemas = Path(__file__).resolve().parents[2] / "docs" / "schemas"
    actions = Draft202012Validator(json.loads((schemas / "actions.json").read_text()))
    conversions = Draft202012Validator(json.loads((schemas / "conversions.json").read_text()))
    out, driver = offer_run()
    d = out.decisions[0]
    driver.send(
        ev(
            "order_placed",
            T0 + HOUR,
            d.customer_id,
            order_id="o1",
            total=90.0,
            properties={"code": d.payload["code"]},
        )
    )
    for decision in out.decisions:
        actions.validate(decision.to_record())
    (conv,) = out.conversions
    assert conv.discount > 0
    conversions.validate(conv.to_record())


def test_a_handed_off_trigger_runs_under_its_own_variant() -> None:
    """churn_alert hands at_risk customers to win_back: win_back's variant sets the discount."""
    cfg = parse_config(
        """
triggers:
  churn_alert: {win_back_offer: true}
  win_back:
    variants:
      small: {discount_percent: 5}
      big: {discount_percent: 30, valid_for: 1d}
""",
        "x.yaml",
    )
    out = Outputs()
    driver = Driver(cfg, out)
    for i in range(40):
        driver.send(ev("order_placed", T0, f"c{i}", order_id=f"o{i}", total=30.0))
    driver.advance(T0 + 40 * 24 * HOUR)  # everyone goes at_risk after 30 days
    offers = [d for d in out.decisions if d.trigger == "win_back"]
    assert len(offers) == 40
    for d in offers:
        assert d.variant == choose(cfg.triggers["win_back"].variants, "win_back", d.customer_id)
        assert d.payload["discount_percent"] == (5 if d.variant == "small" else 30)
    assert {d.variant for d in offers} == {"small", "big"}


def test_the_cli_shows_a_variants_mapping_set_whole() -> None:
    """`kairos triggers set T variants '{...}'` says old -> new, not "(unset) -> (unset)"."""
    from kairos.triggers_cli import _value

    shown = _value(parse_config(CARTS, "x.yaml"), "triggers.abandoned_cart.variants")
    assert "B.weight: 3.0" in shown and "B.delay: 2h" in shown and "A.weight: 1.0" in shown
    assert _value(Config(), "triggers.abandoned_cart.variants") == "(unset)"
