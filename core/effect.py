"""Per-trigger effect: conversion of sent decisions against the held-out control group.

Pure arithmetic shared by ``kairos replay`` and ``kairos report``. Feed it each
decision (:meth:`Effect.decided`) and each attributed conversion
(:meth:`Effect.converted`); :meth:`Effect.summary` gives the counts, revenue,
the uplift (conversion rate sent minus conversion rate held out) and its 95%
confidence interval by the normal approximation for a difference of two
proportions. Either is ``None`` when a group is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from typing import Any

from core.attribution import GROUP_OF
from core.model import Conversion, Decision

Z95 = 1.959963984540054


def uplift(
    sent: int, conversions_sent: int, held_out: int, conversions_held_out: int
) -> tuple[float | None, list[float] | None]:
    """Difference of conversion rates (sent - held out) and its 95% CI, or ``(None, None)``.

    Standard error sqrt(p1(1-p1)/n1 + p2(1-p2)/n2) (unpooled Wald interval).
    """
    if sent <= 0 or held_out <= 0:
        return None, None
    p1 = conversions_sent / sent
    p2 = conversions_held_out / held_out
    diff = p1 - p2
    se = sqrt(p1 * (1 - p1) / sent + p2 * (1 - p2) / held_out)
    return round(diff, 6), [round(diff - Z95 * se, 6), round(diff + Z95 * se, 6)]


@dataclass(slots=True)
class Effect:
    """Running tallies for one trigger."""

    decisions: int = 0
    sent: int = 0
    held_out: int = 0
    conversions_sent: int = 0
    conversions_held_out: int = 0
    revenue_sent: float = 0.0
    revenue_held_out: float = 0.0

    def decided(self, decision: Decision) -> None:
        self.decisions += 1
        group = GROUP_OF.get(decision.status)
        if group == "sent":
            self.sent += 1
        elif group == "held_out":
            self.held_out += 1

    def converted(self, conversion: Conversion) -> None:
        if conversion.group == "sent":
            self.conversions_sent += 1
            self.revenue_sent += conversion.revenue
        else:
            self.conversions_held_out += 1
            self.revenue_held_out += conversion.revenue

    def add(self, other: Effect) -> None:
        """Fold in another tally of the same trigger (from another shard or worker)."""
        self.decisions += other.decisions
        self.sent += other.sent
        self.held_out += other.held_out
        self.conversions_sent += other.conversions_sent
        self.conversions_held_out += other.conversions_held_out
        self.revenue_sent += other.revenue_sent
        self.revenue_held_out += other.revenue_held_out

    def summary(self) -> dict[str, Any]:
        diff, ci = uplift(
            self.sent, self.conversions_sent, self.held_out, self.conversions_held_out
        )
        return {
            "decisions": self.decisions,
            "sent": self.sent,
            "held_out": self.held_out,
            "conversions_sent": self.conversions_sent,
            "conversions_held_out": self.conversions_held_out,
            "revenue_sent": round(self.revenue_sent, 2),
            "revenue_held_out": round(self.revenue_held_out, 2),
            "uplift": diff,
            "ci95": ci,
        }
