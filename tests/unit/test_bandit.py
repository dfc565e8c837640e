"""Thompson-sampling allocation (``core.bandit``) and the inverse-probability weighting that
keeps a report unbiased while shares move (``core.effect``)."""

from __future__ import annotations

import random

import pytest

from core.bandit import allocation, chance_best
from core.config_file import parse_config
from core.driver import Driver, Outputs
from core.effect import Effect
from core.model import Conversion, Decision, Event

T0 = 1_767_258_000_000


@pytest.mark.parametrize(
    "results",
    [
        {"A": (1000, 0), "B": (1000, 500)},
        {"A": (5000, 50), "B": (5000, 400), "C": (5000, 100)},
        {"A": (0, 0), "B": (0, 0)},
        {"A": (20_000, 2_000), "B": (20_000, 2_600), "C": (10, 9)},
    ],
)
def test_no_variant_is_starved_below_its_floor(results: dict[str, tuple[int, int]]) -> None:
    for floor in (0.1, 1 / len(results)):
        shares = allocation(results, floor)
        assert set(shares) == set(results)
        assert min(shares.values()) >= round(floor, 4) - 1e-9, (floor, shares)
        assert sum(shares.values()) == pytest.approx(1, abs=1e-3)


def test_it_shifts_towards_the_better_variant_and_is_repeatable() -> None:
    results = {"A": (2000, 100), "B": (2000, 160)}
    shares = allocation(results, 0.1)
    assert shares["B"] > 0.85 and shares["A"] >= 0.1
    assert allocation(results, 0.1) == shares  # the same results, the same allocation
    even = chance_best({"A": (2000, 100), "B": (2000, 100)})
    assert even["A"] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match=r"expected 0 to 0\.5"):
        allocation(results, 0.6)


def test_each_decision_records_its_variants_share() -> None:
    cfg = parse_config(
        "triggers:\n  abandoned_cart:\n    variants:\n      A: {weight: 1}\n      B: {weight: 3}\n",
        "x.yaml",
    )
    out = Outputs()
    driver = Driver(cfg, out)
    for i in range(50):
        driver.send(Event(f"e{i}", "add_to_cart", f"c{i}", T0, product_id="p", price=5.0))
    driver.advance(T0 + 3_600_000)
    for i in range(50):
        driver.send(Event(f"o{i}", "order_placed", f"c{i}", T0 + 4_000_000, order_id=f"o{i}"))
    carts = [d for d in out.decisions if d.trigger == "abandoned_cart"]
    assert {(d.variant, d.variant_share) for d in carts} == {("A", 0.25), ("B", 0.75)}
    assert all(d.to_record()["variant_share"] == d.variant_share for d in carts)
    share = {d.action_id: d.variant_share for d in carts}
    converted = [c for c in out.conversions if c.trigger == "abandoned_cart"]
    assert converted and all(c.variant_share == share[c.action_id] for c in converted)


def test_weighting_by_inverse_share_removes_the_bias_of_a_moving_allocation() -> None:
    """Both variants convert alike, but B got most of its customers in a good week.

    Week 1: shares 50/50, everyone converts at 10%. Week 2: the bandit moved A to 90%,
    and everyone converts at 2%. Counted plainly, A looks worse (most of its customers
    came in the bad week); weighted by 1 / share, the two are the same.
    """
    rng = random.Random(3)
    e = Effect()
    n = 0
    for shares, rate, customers in (
        ({"A": 0.5, "B": 0.5}, 0.10, 20_000),
        ({"A": 0.9, "B": 0.1}, 0.02, 20_000),
    ):
        for _ in range(customers):
            n += 1
            variant = "A" if rng.random() < shares["A"] else "B"
            share = shares[variant]
            d = Decision(f"a{n}", "t", f"c{n}", "push", 0, "send", "", {}, (), 0, variant, share)
            e.decided(d)
            if rng.random() < rate:
                e.converted(
                    Conversion("t", "sent", f"a{n}", f"c{n}", None, 1.0, 0, variant, 0.0, share)
                )
    s = e.summary()
    b = s["variants"]["B"]
    naive = b["versus_first"]["diff"]
    weighted = b["versus_first"]["diff_weighted"]
    assert naive > 0.02  # a false "B is better" from the allocation alone
    assert abs(weighted) < 0.006, weighted
    assert s["variants"]["A"]["rate_weighted"] == pytest.approx(0.06, abs=0.005)


def test_a_customer_keeps_their_variant_when_the_weights_move() -> None:
    """Decided under 50/50, then the allocation moves to 10/90: customers already decided
    keep their variant (and its share then), new ones follow the new weights."""
    from dataclasses import replace

    from core.variants import Variant
    from state import codec

    text = "triggers:\n  abandoned_cart:\n    variants:\n      A: {}\n      B: {}\n"
    before = parse_config(text, "x.yaml")
    tcfg = before.triggers["abandoned_cart"]
    moved = {"A": Variant(0.1), "B": Variant(0.9)}
    after = replace(
        before, triggers={**before.triggers, "abandoned_cart": replace(tcfg, variants=moved)}
    )
    out = Outputs()
    driver = Driver(before, out)
    for i in range(200):
        driver.send(Event(f"e{i}", "add_to_cart", f"c{i}", T0, product_id="p", price=5.0))
    driver.advance(T0 + 3_600_000)
    first = {
        d.customer_id: (d.variant, d.variant_share)
        for d in out.decisions
        if d.trigger == "abandoned_cart"
    }
    assert set(first.values()) == {("A", 0.5), ("B", 0.5)}
    # The state carries the assignment through the changelog.
    state = driver.state("c0")
    assert (
        codec.decode(codec.encode(state)).variants
        == state.variants
        == {"abandoned_cart": list(first["c0"])}
    )

    driver.cfg = after  # what a live config change does to a worker
    out.decisions.clear()
    for i in range(400):  # the old customers' second carts, and new customers
        driver.send(Event(f"f{i}", "remove_from_cart", f"c{i}", T0 + 7_200_000, product_id="p"))
        driver.send(
            Event(f"g{i}", "add_to_cart", f"c{i}", T0 + 7_200_001, product_id="q", price=5.0)
        )
    driver.advance(T0 + 4 * 3_600_000)
    second = [d for d in out.decisions if d.trigger == "abandoned_cart"]
    old = [d for d in second if d.customer_id in first]
    new = [d for d in second if d.customer_id not in first]
    assert old and all((d.variant, d.variant_share) == first[d.customer_id] for d in old)
    assert {d.variant_share for d in new} == {0.1, 0.9}
    assert sum(d.variant == "B" for d in new) > 0.8 * len(new)
