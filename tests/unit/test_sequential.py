"""Always-valid comparison of conversion rates (``core.sequential``): the formulas, an A/A
test peeked at every day, and a real effect found."""

from __future__ import annotations

import random
from math import exp, log, sqrt

import pytest

from core.effect import uplift
from core.sequential import ALPHA, compare, half_width, likelihood_ratio


def test_likelihood_ratio_and_width_known_values() -> None:
    # V = 1e-4, tau = 0.02: V + tau^2 = 5e-4; D = 0.03 gives exponent 3.6.
    assert likelihood_ratio(0.03, 1e-4, 0.02) == pytest.approx(sqrt(0.2) * exp(3.6))
    assert likelihood_ratio(0.03, 1e-4, 0.02) == pytest.approx(16.3672, abs=1e-4)
    assert half_width(1e-4, 0.05, 0.02) == pytest.approx(sqrt(1.25e-4 * (log(5) + 2 * log(20))))
    assert half_width(1e-4, 0.05, 0.02) == pytest.approx(0.030824, abs=1e-6)
    # No difference: L < 1 (the mixture only loses), p-value 1.
    assert likelihood_ratio(0.0, 1e-4) < 1


def test_the_interval_edge_is_where_the_p_value_crosses_alpha() -> None:
    width = half_width(1e-4)
    assert 1 / likelihood_ratio(width, 1e-4) == pytest.approx(ALPHA)
    assert (
        1 / likelihood_ratio(width * 1.01, 1e-4) < ALPHA < 1 / likelihood_ratio(width * 0.99, 1e-4)
    )


def test_it_is_wider_than_the_fixed_horizon_interval() -> None:
    seq = compare(2000, 100, 2000, 140)
    _, fixed = uplift(2000, 140, 2000, 100)
    assert fixed is not None and seq.low is not None and seq.high is not None
    assert seq.low < fixed[0] and seq.high > fixed[1]
    assert seq.diff == pytest.approx(0.02)


def test_verdicts() -> None:
    assert (
        compare(0, 0, 10, 1).verdict("B", "A") == "not enough data yet (no difference seen so far)"
    )
    win = compare(5000, 250, 5000, 400)
    assert win.significant and win.verdict("B", "A") == "B beats A with 95% confidence"
    assert compare(5000, 400, 5000, 250).verdict("B", "A") == "A beats B with 95% confidence"
    pending = compare(300, 15, 300, 21)
    assert not pending.significant and pending.more_needed is not None
    assert pending.verdict("B", "A") == (
        f"not enough data yet (about {pending.more_needed:,} more sends needed)"
    )
    # Those many more sends at the same rates do settle it, and a tenth of them do not.
    n = 600 + pending.more_needed
    assert compare(n // 2, round(n / 2 * 0.05), n // 2, round(n / 2 * 0.07)).significant
    m = 600 + pending.more_needed // 10
    assert not compare(m // 2, round(m / 2 * 0.05), m // 2, round(m / 2 * 0.07)).significant
    assert compare(1000, 50, 1000, 50).verdict("B", "A").startswith("not enough data yet")


def _day(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def _peeking(rate_a: float, rate_b: float, reps: int, days: int, per_day: int) -> tuple[int, int]:
    """(runs the sequential test ever called, runs a daily-peeked fixed-horizon test called)."""
    rng = random.Random(16)
    sequential = naive = 0
    for _ in range(reps):
        n = x_a = x_b = 0
        seq_hit = naive_hit = False
        for _ in range(days):
            n += per_day
            x_a += _day(rng, per_day, rate_a)
            x_b += _day(rng, per_day, rate_b)
            seq_hit = seq_hit or compare(n, x_a, n, x_b).significant
            _, ci = uplift(n, x_b, n, x_a)
            naive_hit = naive_hit or (ci is not None and (ci[0] > 0 or ci[1] < 0))
        sequential += seq_hit
        naive += naive_hit
    return sequential, naive


def test_an_aa_test_peeked_every_day_stays_under_five_percent() -> None:
    """600 A/A experiments of 30 days, 150 sends per arm a day, 5% conversion, peeked daily.

    The fixed-horizon interval read every day calls a winner far more often than 5%:
    the check that this simulation can tell a valid method from an invalid one.
    """
    reps = 600
    sequential, naive = _peeking(0.05, 0.05, reps, days=30, per_day=150)
    # 5% of 600 is 30; a method at exactly 5% shows more than 42 with probability < 1%.
    assert sequential <= 30, sequential
    assert naive > 60, naive  # about 20% in practice


def test_a_true_effect_is_found() -> None:
    """5% against 7.5%, 200 sends per arm a day for 30 days: found, and for the right arm."""
    rng = random.Random(7)
    found = 0
    for _ in range(100):
        n = x_a = x_b = 0
        for _ in range(30):
            n += 200
            x_a += _day(rng, 200, 0.05)
            x_b += _day(rng, 200, 0.075)
            result = compare(n, x_a, n, x_b)
            if result.significant:
                assert result.diff is not None and result.diff > 0
                assert result.low is not None and result.low > 0
                found += 1
                break
    assert found >= 90, found
