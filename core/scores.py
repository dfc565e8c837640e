"""Customer scores, computed from the state: RFM, lifetime value, lead score, lead owner.

RFM and CLV need no state of their own: they are read off the customer's orders when
asked (an audience, a tag rule, ``kairos replay --customers-out``), so they are current
after every order and cost nothing on events. The lead score keeps its behaviour part in
``CustomerState.lead`` (``[score, at, qualified, qualifications]``), since old interest
fades: the score at ``at`` halves every ``half_life``.

Formulas (``scores:`` in the config holds the parameters):

- **RFM**: recency = days since the last order, frequency = lifetime orders, monetary =
  lifetime revenue, each on a 1-5 scale by the thresholds of ``scores.rfm`` (5 is best:
  most recent, most frequent, biggest); ``fm`` is the mean of F and M, rounded half up.
  The segment is the first of: ``champions`` (R>=4, FM>=4), ``loyal`` (R>=3, FM>=3),
  ``promising`` (R>=4), ``need_attention`` (R=3), ``at_risk`` (FM>=3), ``hibernating``
  (R=2), ``lost``; ``prospect`` for a customer without orders (R, F, M are then null).
- **CLV** (the material's "revenue per transaction x frequency - cost per transaction x
  transactions", over the expected lifespan): ``aov = revenue / orders``, ``rate = orders /
  max(tenure, min_tenure)`` in orders a year (tenure: first seen to now), ``expected =
  rate x lifespan_years`` transactions, ``clv = aov x expected - cost_per_order x
  expected``; 0 without orders.
- **Lead**: ``behaviour(t) = sum of points x 0.5 ** ((t - t_event) / half_life)`` plus the
  fit points whose condition holds at ``t``.
"""

from __future__ import annotations

from typing import Any

from core.durations import DAY
from core.ids import unit_share
from core.model import ORDER_PLACED_AT, CustomerState
from core.segments_config import ClvConfig, RfmConfig

YEAR = 365 * DAY
RFM_SEGMENTS = (
    "champions",
    "loyal",
    "promising",
    "need_attention",
    "at_risk",
    "hibernating",
    "lost",
    "prospect",
)

# CustomerState.lead: [score at ``at``, at (ms), qualified (0/1), qualifications so far]
LEAD_SCORE, LEAD_AT, LEAD_QUALIFIED, LEAD_COUNT = 0, 1, 2, 3


def _higher_is_better(value: float, edges: tuple[float, ...]) -> int:
    level = 1
    for edge in edges:
        if value >= edge:
            level += 1
    return level


def _recency(days: float, edges: tuple[float, ...]) -> int:
    level = 5
    for edge in edges:
        if days > edge:
            level -= 1
    return level


def last_order_at(state: CustomerState) -> int | None:
    return state.orders[-1][ORDER_PLACED_AT] if state.orders else None


def rfm(state: CustomerState, now: int, cfg: RfmConfig) -> tuple[int, int, int, str] | None:
    """(R, F, M, segment), or None for a customer who never ordered."""
    last = last_order_at(state)
    if last is None or not state.order_count:
        return None
    r = _recency(max(0, now - last) / DAY, cfg.recency_days)
    f = _higher_is_better(state.order_count, cfg.frequency)
    m = _higher_is_better(state.revenue, cfg.monetary)
    return r, f, m, rfm_segment(r, f, m)


def rfm_segment(r: int, f: int, m: int) -> str:
    fm = (f + m + 1) // 2  # mean, half up
    if r >= 4 and fm >= 4:
        return "champions"
    if r >= 3 and fm >= 3:
        return "loyal"
    if r >= 4:
        return "promising"
    if r == 3:
        return "need_attention"
    if fm >= 3:
        return "at_risk"
    if r == 2:
        return "hibernating"
    return "lost"


def clv(state: CustomerState, now: int, cfg: ClvConfig) -> float:
    """Expected lifetime value (see the module docstring); 0 without orders."""
    orders = state.order_count
    if not orders:
        return 0.0
    aov = state.revenue / orders
    tenure = max(now - (state.first_seen or now), cfg.min_tenure, 1)
    expected = orders / (tenure / YEAR) * cfg.lifespan_years
    return round(aov * expected - cfg.cost_per_order * expected, 2)


def decay(half_life: int, elapsed: int) -> float:
    """The share of a score left after ``elapsed`` ms (1 for no time or no half-life)."""
    if elapsed <= 0 or half_life <= 0:
        return 1.0
    return float(0.5 ** (elapsed / half_life))


def lead_behaviour(state: CustomerState, now: int, half_life: int) -> float:
    """The behaviour part of the lead score at ``now``."""
    lead = state.lead
    if not lead:
        return 0.0
    score: float = lead[LEAD_SCORE]
    return score * decay(half_life, now - lead[LEAD_AT])


def add_points(state: CustomerState, points: float, ts: int, half_life: int) -> None:
    """Add ``points`` earned at event time ``ts``; out of order gives the same score."""
    lead = state.lead
    if not lead:
        state.lead = [float(points), ts, 0, 0]
        return
    at = lead[LEAD_AT]
    if ts >= at:
        lead[LEAD_SCORE] = lead[LEAD_SCORE] * decay(half_life, ts - at) + points
        lead[LEAD_AT] = ts
    else:  # an older event: its points, faded to the newest time kept
        lead[LEAD_SCORE] += points * decay(half_life, at - ts)


def owner(customer_id: str, qualification: int, owners: tuple[str, ...]) -> str:
    """The owner of the ``qualification``-th qualification (0 first) of a lead.

    Round robin per lead, fair across leads, and the same on every worker and in
    replay: the lead's start in the list comes from a hash of its id, and each
    later qualification goes to the next owner. A counter shared across leads
    would depend on which worker saw which lead first (and on partition
    assignment), so a replay or a failover would route differently.
    """
    if not owners:
        return ""
    start = int(unit_share("lead_owner", customer_id) * len(owners))
    return owners[(start + qualification) % len(owners)]


def lead_summary(
    state: CustomerState, score: float | None, requalify_below: float
) -> dict[str, Any]:
    """What ``--customers-out`` shows of a scored lead besides its score: whether it is
    qualified now (it was, and has not fallen below ``requalify_below`` since) and how
    many times it qualified."""
    lead = state.lead
    if score is None:
        return {}
    if not lead:
        return {"qualified": False, "qualifications": 0}
    qualified = bool(lead[LEAD_QUALIFIED]) and score >= requalify_below
    return {"qualified": qualified, "qualifications": lead[LEAD_COUNT]}
