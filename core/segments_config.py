"""The typed form of the ``audiences:``, ``tags:`` and ``scores:`` sections of a config.

Plain frozen dataclasses with their documented defaults; ``core.segments_file`` reads
them from the file (with file:line messages) and ``core.segments`` binds them once per
config. Expressions are kept as their text, with where they were written, and compiled
by ``core.audience_expr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.durations import DAY


def _duration(default_ms: int) -> Any:
    """As ``core.config.duration`` (which imports this module): written ``30d`` in a file."""
    return field(default=default_ms, metadata={"duration": True})


@dataclass(frozen=True, slots=True)
class AudienceDef:
    """A named audience: customers for whom ``expr`` holds, now."""

    name: str
    expr: str
    line: int = field(default=0, compare=False)  # where it was written (messages)


@dataclass(frozen=True, slots=True)
class TagRule:
    """A sticky tag: set when ``set`` holds, cleared when ``clear`` holds (checked per event)."""

    name: str
    set: str
    clear: str = ""
    line: int = field(default=0, compare=False)  # where it was written (messages)


@dataclass(frozen=True, slots=True)
class RfmConfig:
    """Thresholds of the 1-5 scales; a list of four gives the edges between the five levels.

    Recency: days since the last order at or below ``recency_days[0]`` is 5, at or below
    ``[1]`` 4, ... above ``[3]`` 1. Frequency (lifetime orders) and monetary (lifetime
    revenue): at or above ``[3]`` is 5, at or above ``[2]`` 4, ... below ``[0]`` 1.
    """

    recency_days: tuple[float, ...] = (14, 30, 90, 180)
    frequency: tuple[float, ...] = (2, 3, 5, 8)
    monetary: tuple[float, ...] = (100, 250, 500, 1000)


@dataclass(frozen=True, slots=True)
class ClvConfig:
    """Customer lifetime value from the customer's own history (formula in ``core.scores``)."""

    lifespan_years: float = 3.0  # how long a customer is expected to keep buying
    cost_per_order: float = 0.0  # cost per transaction (fulfilment, payment fees...)
    min_tenure: int = _duration(30 * DAY)  # a newer customer's rate is taken over this long


@dataclass(frozen=True, slots=True)
class PointRule:
    """Points for a behaviour: events of type ``on`` (whose ``url`` contains ``url``, if set)."""

    on: str
    points: float
    url: str = ""
    line: int = field(default=0, compare=False)  # where it was written (messages)


@dataclass(frozen=True, slots=True)
class FitRule:
    """Profile fit: ``points`` while ``when`` holds (no decay)."""

    when: str
    points: float
    line: int = field(default=0, compare=False)  # where it was written (messages)


@dataclass(frozen=True, slots=True)
class LeadConfig:
    """Lead scoring: behaviour points fading with ``half_life``, plus profile fit."""

    points: tuple[PointRule, ...] = ()  # none: no lead scoring
    fit: tuple[FitRule, ...] = ()
    half_life: int = _duration(14 * DAY)
    mql: float = 50.0  # a score reaching this qualifies the lead (lead_qualified fires)
    requalify_below: float = 20.0  # a qualified lead falling below this may qualify again


@dataclass(frozen=True, slots=True)
class ScoresConfig:
    rfm: RfmConfig = RfmConfig()
    clv: ClvConfig = ClvConfig()
    lead: LeadConfig = LeadConfig()
