"""Membership tiers from the points ledger: thresholds on points or spend in a rolling window.

Rules: a customer is in the highest tier whose threshold their qualifying amount
(``core.points.qualifying``) reaches, below the lowest one in ``base_tier``. An upgrade
happens with the event that earns it; a downgrade happens when earnings leave the
window (``downgrade``: when, assuming nothing new is earned), or at once when a cancel
or refund takes the amount back.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from core.config import MembershipConfig
from core.points import B_DAY, B_POINTS, B_SPEND, qualifying, until

Tier = tuple[float, str]  # (threshold, name)


def tier_problem(text: str) -> str:
    """Why ``name:threshold`` is not a tier (for the config file), or ``""``."""
    name, sep, threshold = text.partition(":")
    try:
        value = float(threshold)
    except ValueError:
        value = -1.0
    if not sep or not name.strip() or not value >= 0:
        return f"expected a tier as name:threshold like gold:2000, got {text!r}"
    return ""


@lru_cache(maxsize=64)
def ladder(tiers: tuple[str, ...], base: str) -> tuple[Tier, ...]:
    """The tiers, lowest first, the base tier at threshold 0 (invalid entries skipped)."""
    parsed = [(float(t.partition(":")[2]), t.partition(":")[0].strip()) for t in tiers]
    return ((0.0, base), *sorted(t for t in parsed if t[0] > 0))


def level(amount: float, cfg: MembershipConfig) -> int:
    """The tier index (0: the base tier) an amount qualifies for."""
    steps = ladder(cfg.tiers, cfg.base_tier)
    i = 0
    for j, (threshold, _) in enumerate(steps):
        if amount >= threshold:
            i = j
    return i


def name(index: int, cfg: MembershipConfig) -> str:
    return ladder(cfg.tiers, cfg.base_tier)[index][1]


def threshold(index: int, cfg: MembershipConfig) -> float:
    return ladder(cfg.tiers, cfg.base_tier)[index][0]


def current(member: dict[str, Any], now: int, cfg: MembershipConfig) -> int:
    return level(qualifying(member, now, cfg), cfg)


def downgrade(member: dict[str, Any], now: int, cfg: MembershipConfig) -> tuple[int, int] | None:
    """``(when, to_index)`` of the next downgrade if nothing more is earned, or None."""
    field = B_POINTS if cfg.tier_basis == "points" else B_SPEND
    window = cfg.tier_window
    live = [(until(int(b[B_DAY]), window), b[field]) for b in member.get("d", ())]
    live = [(at, amount) for at, amount in live if at > now]
    remaining = sum(amount for _, amount in live)
    now_level = level(remaining, cfg)
    if now_level == 0:
        return None
    for at, amount in live:  # oldest first: the order they leave the window
        remaining -= amount
        to = level(round(remaining, 2), cfg)
        if to < now_level:
            return at, to
    return None  # unreachable: an empty window is the base tier
