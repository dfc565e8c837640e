"""Always-valid comparison of two conversion rates: results a campaign owner may read every day.

A fixed-horizon 95% interval is right once, at a sample size chosen in advance;
looked at every day it "finds" an effect far more often than 5% of the time. The
mixture sequential probability ratio test (mSPRT; Johari, Koomen, Pekelis and
Walsh, "Always valid inference", 2017/2022) is valid at any time one looks.

For the difference ``d = p_b - p_a`` with estimate ``D`` (difference of the observed
rates) and variance ``V = p_a(1-p_a)/n_a + p_b(1-p_b)/n_b``, a normal mixture
``d ~ N(0, tau^2)`` over the alternatives gives the likelihood ratio against d = 0

    L = sqrt(V / (V + tau^2)) * exp(tau^2 D^2 / (2 V (V + tau^2)))

which is (asymptotically) a martingale under no difference, so by Ville's
inequality ``P(L ever >= 1/alpha) <= alpha``. Hence:

- the always-valid p-value ``min(1, 1/L)``;
- the confidence sequence ``D +- sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2)/V) - 2 log alpha))``,
  the d0 that the same test (centred on d0) would not reject.

Both are the values at the current sample; the running minimum (of p) and the
running intersection (of intervals) over every earlier look would be tighter still,
but need the history: the current value alone is valid, and is the same whatever
order a report and a replay read the records in. ``tau`` is the scale of effects one
expects; it changes power, not validity. Rates in ``V`` are smoothed by half a
conversion per arm, so no conversions at all does not make V zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import exp, log, sqrt

TAU = 0.02  # mixture scale: differences of conversion rates of a couple of points
ALPHA = 0.05
MIN_PER_ARM = 30  # below this the normal approximation is not worth reading
_LOG_CAP = 700.0  # exp() of more overflows a float; such an L is decisive anyway


def _variance(n_a: int, x_a: int, n_b: int, x_b: int) -> float:
    pa = (x_a + 0.5) / (n_a + 1)
    pb = (x_b + 0.5) / (n_b + 1)
    return pa * (1 - pa) / n_a + pb * (1 - pb) / n_b


def likelihood_ratio(diff: float, variance: float, tau: float = TAU) -> float:
    """The normal-mixture likelihood ratio of an observed ``diff`` with ``variance``."""
    t2 = tau * tau
    exponent = t2 * diff * diff / (2 * variance * (variance + t2))
    return sqrt(variance / (variance + t2)) * exp(min(exponent, _LOG_CAP))


def half_width(variance: float, alpha: float = ALPHA, tau: float = TAU) -> float:
    """Half the width of the confidence sequence at this variance."""
    t2 = tau * tau
    return sqrt(
        variance * (variance + t2) / t2 * (log((variance + t2) / variance) - 2 * log(alpha))
    )


@dataclass(frozen=True, slots=True)
class Comparison:
    """B against A, now: the difference of rates and what may be said of it."""

    diff: float | None  # rate of B - rate of A; None while an arm is empty
    low: float | None  # the confidence sequence at this sample
    high: float | None
    p_value: float | None  # always-valid, for "no difference"
    significant: bool  # the sequence excludes 0
    more_needed: int | None  # sends (both arms) until it would, at the rates seen; None: unknown

    def verdict(self, b: str, a: str, alpha: float = ALPHA) -> str:
        """A sentence a campaign owner reads: who wins, or how much more it takes."""
        confidence = f"{(1 - alpha) * 100:g}%"
        if self.significant and self.diff is not None:
            winner, loser = (b, a) if self.diff > 0 else (a, b)
            return f"{winner} beats {loser} with {confidence} confidence"
        if self.more_needed is None:
            return "not enough data yet (no difference seen so far)"
        return f"not enough data yet (about {self.more_needed:,} more sends needed)"

    def to_dict(self) -> dict[str, object]:
        return {
            "diff": None if self.diff is None else round(self.diff, 6),
            "interval": None
            if self.low is None or self.high is None
            else [round(self.low, 6), round(self.high, 6)],
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "significant": self.significant,
            "more_needed": self.more_needed,
        }


def compare(
    n_a: int, x_a: int, n_b: int, x_b: int, alpha: float = ALPHA, tau: float = TAU
) -> Comparison:
    """B (``x_b`` conversions of ``n_b``) against A, valid however often it is looked at."""
    if n_a <= 0 or n_b <= 0:
        return Comparison(None, None, None, None, False, None)
    diff = x_b / n_b - x_a / n_a
    if min(n_a, n_b) < MIN_PER_ARM:
        more = _more_needed(n_a, x_a, n_b, x_b, diff, alpha, tau)
        return Comparison(diff, None, None, None, False, more)
    variance = _variance(n_a, x_a, n_b, x_b)
    width = half_width(variance, alpha, tau)
    p_value = min(1.0, 1 / likelihood_ratio(diff, variance, tau))
    significant = p_value <= alpha
    more = None if significant else _more_needed(n_a, x_a, n_b, x_b, diff, alpha, tau)
    return Comparison(diff, diff - width, diff + width, p_value, significant, more)


def _more_needed(
    n_a: int, x_a: int, n_b: int, x_b: int, diff: float, alpha: float, tau: float
) -> int | None:
    """Extra sends (split as now) after which the rates seen so far would be significant."""
    if diff == 0:
        return None
    rate_a, rate_b = (x_a + 0.5) / (n_a + 1), (x_b + 0.5) / (n_b + 1)
    share_b = n_b / (n_a + n_b)
    spread = rate_a * (1 - rate_a) / (1 - share_b) + rate_b * (1 - rate_b) / share_b

    def settled(total: float) -> bool:  # V at ``total`` sends is spread / total
        variance = spread / total
        return likelihood_ratio(diff, variance, tau) >= 1 / alpha

    now = n_a + n_b
    high = max(now, 2 * MIN_PER_ARM)
    while not settled(high):
        high *= 2
        if high > 10**10:
            return None  # a difference this small is no difference in practice
    low = now
    while high - low > max(1, high // 100):  # about: to a percent
        mid = (low + high) // 2
        low, high = (low, mid) if settled(mid) else (mid, high)
    return max(high - now, 1)
