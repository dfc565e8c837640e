"""Per-trigger effect: conversion of sent decisions against the held-out control group.

Pure arithmetic shared by ``kairos replay`` and ``kairos report``. Feed it each
decision (:meth:`Effect.decided`) and each attributed conversion
(:meth:`Effect.converted`); :meth:`Effect.summary` gives the counts, revenue,
the uplift (conversion rate sent minus conversion rate held out) and its 95%
confidence interval by the normal approximation for a difference of two
proportions. Either is ``None`` when a group is empty.

The summary also gives what stays valid when the figures are read every day
(``core.sequential``: the always-valid ``interval`` and a ``verdict``), money
(``core.roi``: messages per channel, their cost, discounts, ROI) and, for a
trigger with variants (``core.variants``), the same per variant under
``variants``: each against its own held-out customers and against the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import sqrt
from typing import Any

from core import sequential
from core.attribution import GROUP_OF
from core.model import Conversion, Decision
from core.roi import Costs, money

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
    messages: dict[str, int] = field(default_factory=dict)  # sent decisions by channel
    discount: float = 0.0  # given away by redeemed offer codes
    variants: dict[str, Effect] = field(default_factory=dict)  # by variant name, if any
    # Sums of 1 / the variant's share at decision time (core.bandit): inverse-probability
    # weights, so a variant's rate stays unbiased while its share moves.
    weight_sent: float = 0.0
    weight_converted: float = 0.0

    def decided(self, decision: Decision) -> None:
        self._decided(decision)
        if decision.variant is not None:
            variant = self.variants.get(decision.variant)
            if variant is None:
                variant = self.variants[decision.variant] = Effect()
            variant._decided(decision)

    def _decided(self, decision: Decision) -> None:
        self.decisions += 1
        group = GROUP_OF.get(decision.status)
        if group == "sent":
            self.sent += 1
            self.messages[decision.channel] = self.messages.get(decision.channel, 0) + 1
            if decision.variant_share > 0:
                self.weight_sent += 1 / decision.variant_share
        elif group == "held_out":
            self.held_out += 1

    def converted(self, conversion: Conversion) -> None:
        self._converted(conversion)
        if conversion.variant is not None:
            variant = self.variants.get(conversion.variant)
            if variant is None:
                variant = self.variants[conversion.variant] = Effect()
            variant._converted(conversion)

    def _converted(self, conversion: Conversion) -> None:
        if conversion.group == "sent":
            self.conversions_sent += 1
            self.revenue_sent += conversion.revenue
            self.discount += conversion.discount
            if conversion.variant_share > 0:
                self.weight_converted += 1 / conversion.variant_share
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
        for channel, n in other.messages.items():
            self.messages[channel] = self.messages.get(channel, 0) + n
        self.discount += other.discount
        self.weight_sent += other.weight_sent
        self.weight_converted += other.weight_converted
        for name, variant in other.variants.items():
            self.variants.setdefault(name, Effect()).add(variant)

    def summary(self, costs: Costs | None = None, first: str | None = None) -> dict[str, Any]:
        """The figures of this trigger; ``first``: the variant the others are compared with
        (the first in the config; by default the first by name)."""
        out = self.figures(costs or Costs())
        if self.variants:
            names = sorted(self.variants)
            base = first if first in self.variants else names[0]
            if base != names[0]:
                names = [base, *(n for n in names if n != base)]
            a = self.variants[base]
            out["variants"] = {}
            for name in names:
                v = self.variants[name]
                figures = v.figures(costs or Costs())
                figures["rate_weighted"] = v.rate_weighted()
                if name != base:
                    versus = sequential.compare(
                        a.sent, a.conversions_sent, v.sent, v.conversions_sent
                    )
                    figures["versus_first"] = {
                        "first": base,
                        **versus.to_dict(),
                        "verdict": versus.verdict(name, base),
                        "diff_weighted": _difference(v.rate_weighted(), a.rate_weighted()),
                    }
                out["variants"][name] = figures
        return out

    def rate_weighted(self) -> float | None:
        """Conversion rate of sent decisions, each weighted by 1 / its variant's share then."""
        if self.weight_sent <= 0:
            return None
        return round(self.weight_converted / self.weight_sent, 6)

    def figures(self, costs: Costs) -> dict[str, Any]:
        diff, ci = uplift(
            self.sent, self.conversions_sent, self.held_out, self.conversions_held_out
        )
        valid = sequential.compare(
            self.held_out, self.conversions_held_out, self.sent, self.conversions_sent
        )
        figures = {
            "decisions": self.decisions,
            "sent": self.sent,
            "held_out": self.held_out,
            "conversions_sent": self.conversions_sent,
            "conversions_held_out": self.conversions_held_out,
            "revenue_sent": round(self.revenue_sent, 2),
            "revenue_held_out": round(self.revenue_held_out, 2),
            "uplift": diff,
            "ci95": ci,
            # valid however often it is read: the confidence sequence and its verdict
            "interval": valid.to_dict()["interval"],
            "p_value": valid.to_dict()["p_value"],
            "verdict": valid.verdict("sending", "holding out") if self.held_out else "no holdout",
            "conversions": self.conversions_sent,
            "revenue": round(self.revenue_sent, 2),
            **money(
                costs,
                self.messages,
                self.discount,
                self.sent,
                self.conversions_sent,
                self.revenue_sent,
                self.held_out,
                self.revenue_held_out,
            ),
        }
        return figures


def _difference(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 6)
