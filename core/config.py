"""The typed configuration: journey thresholds, engine knobs, contact policy, triggers.

Every value has a documented default here or, for a trigger's own settings, in its
module under ``core/triggers/`` (its config type is part of its declaration, see
``core.trigger``); ``config/triggers.yaml`` overrides them key by key (see
``core.config_file`` for loading and validation). Durations are milliseconds in code
and ``30m``/``2h``/``7d`` in the file; fields holding one are declared with
:func:`duration`, numbers with a range and text with a fixed vocabulary with
:func:`setting`, so the file's validation reads them off the dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.durations import DAY, HOUR, MINUTE, SECOND
from core.roi import Costs
from core.segments_config import AudienceDef, ScoresConfig, TagRule
from core.variants import Variant

T = TypeVar("T")

CHANNELS = ("console", "push", "email", "sms", "webhook", "slack", "wecom")


@dataclass(frozen=True, slots=True)
class Limit:
    """The range a number setting must fall in, and how a message says so."""

    check: Callable[[float], bool]
    expected: str  # completes "expected ..., got 1.5"


AT_LEAST_ONE = Limit(lambda v: v >= 1, "a whole number of 1 or more")
PERCENT = Limit(lambda v: 0 < v <= 100, "a percentage from 1 to 100")
SHARE_BELOW_ONE = Limit(lambda v: 0 <= v < 1, "a share from 0 up to but not including 1, like 0.1")
SHARE_UP_TO_ONE = Limit(lambda v: 0 < v <= 1, "a share above 0 and at most 1, like 0.25")
ABOVE_ZERO = Limit(lambda v: v > 0, "a number above 0")
NPS_SCORE = Limit(lambda v: 0 <= v <= 10, "an NPS score from 0 to 10")


def duration(default_ms: int, *, positive: bool = False) -> Any:
    """A dataclass field whose file form is a duration string (``positive``: not 0)."""
    return field(default=default_ms, metadata={"duration": True, "positive": positive})


def setting(default: T, *, limit: Limit | None = None, choices: tuple[str, ...] = ()) -> T:
    """A dataclass field with a range (numbers; else 0 or more) or a vocabulary (text)."""
    return field(default=default, metadata={"limit": limit, "choices": choices})


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: str = "21:00"  # local time in the customer's timezone
    end: str = "08:00"
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class JourneyConfig:
    at_risk_after: int = duration(30 * DAY)  # a purchaser with no activity this long
    churned_after: int = duration(90 * DAY)
    loyalty_orders: int = setting(2, limit=AT_LEAST_ONE)  # orders within loyalty_window...
    loyalty_window: int = duration(90 * DAY)  # ...make a loyal customer


@dataclass(frozen=True, slots=True)
class EngineConfig:
    timer_grace: int = duration(2 * SECOND)  # wait this long past a deadline for late exits
    late_grace: int = duration(10 * MINUTE)  # older than newest-seen minus this = late event
    dedupe_horizon: int = duration(1 * DAY)  # event_ids remembered this long...
    dedupe_size: int = setting(32, limit=AT_LEAST_ONE)  # ...and at most this many per customer
    recent_views: int = setting(16, limit=AT_LEAST_ONE)  # product views kept per customer


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """What every trigger has: switch, channel, template and delivery policy hooks.

    Each trigger's config type subclasses this in the trigger's module.
    """

    enabled: bool = True
    shadow: bool = False  # decide and record with status "shadow", never send
    channel: str = "push"
    template: str = ""
    priority: int = 50  # higher wins when triggers compete within policy.priority_window
    holdout: float = setting(0.0, limit=SHARE_BELOW_ONE)  # share held out as control
    cooldown: int = duration(0)  # minimum time between two sends of this trigger
    attribution_window: int = duration(3 * DAY)
    # who the trigger is for: a named audience or an expression (core.audience_expr);
    # "" is everyone
    audience: str = ""
    # name -> weight and overrides (core.variants); empty: one message for everyone
    variants: dict[str, Variant] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FrequencyCaps:
    per_day: int = 3  # messages to one customer across triggers, rolling 24h
    per_hour_push: int = 1  # push messages to one customer, rolling hour


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    quiet_hours: QuietHours = QuietHours()
    default_timezone: str = "UTC"
    frequency_caps: FrequencyCaps = FrequencyCaps()
    priority_window: int = duration(10 * MINUTE)
    cap_exempt_channels: tuple[str, ...] = ("slack", "wecom", "webhook", "console")


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """Points and tiers (``core.points``, ``core.tiers``); off unless ``enabled``."""

    enabled: bool = False
    earn_on: str = setting("order_placed", choices=("order_placed", "order_paid"))
    points_per_unit: float = 1.0  # points per unit of the order total (rounded down)
    review_bonus: int = 0  # points for a review, at most one bonus a day
    expiry: int = duration(365 * DAY)  # points lapse this long after the day they were earned
    tier_basis: str = setting("points", choices=("points", "spend"))
    tier_window: int = duration(365 * DAY)  # tiers count what was earned within this
    tiers: tuple[str, ...] = ("silver:500", "gold:2000", "platinum:5000")  # name:threshold
    base_tier: str = "member"  # below the lowest threshold
    max_days: int = setting(60, limit=AT_LEAST_ONE)  # earning days kept per customer


@dataclass(frozen=True, slots=True)
class RecommendConfig:
    """Related products (``core.recommend``); off unless ``enabled``."""

    enabled: bool = False
    count: int = setting(3, limit=AT_LEAST_ONE)  # products in ``payload.recommended``
    related: int = setting(20, limit=AT_LEAST_ONE)  # related products kept per product
    max_products: int = setting(100_000, limit=AT_LEAST_ONE)  # products kept in total
    half_life: int = duration(7 * DAY, positive=True)  # co-occurrence counts halve this often
    co_window: int = duration(1 * HOUR)  # views this close together are co-views
    purchase_weight: float = setting(3.0, limit=ABOVE_ZERO)  # a co-purchase counts as many co-views


def _default_triggers() -> dict[str, TriggerConfig]:
    # Imported here: trigger modules import this one for TriggerConfig.
    from core.triggers import TRIGGER_TYPES

    return {name: cls() for name, cls in TRIGGER_TYPES.items()}


@dataclass(frozen=True, slots=True)
class Config:
    journey: JourneyConfig = JourneyConfig()
    engine: EngineConfig = EngineConfig()
    policy: PolicyConfig = PolicyConfig()
    # every registered trigger (core.triggers), in registry order
    triggers: dict[str, TriggerConfig] = field(default_factory=_default_triggers)
    # audiences, tags and scores (core.segments); read by core.segments_file
    audiences: tuple[AudienceDef, ...] = field(default=(), metadata={"section": True})
    tags: tuple[TagRule, ...] = field(default=(), metadata={"section": True})
    scores: ScoresConfig = field(default=ScoresConfig(), metadata={"section": True})
    costs: Costs = field(default_factory=Costs)  # per message and channel, for ROI (core.roi)
    membership: MembershipConfig = MembershipConfig()
    recommend: RecommendConfig = RecommendConfig()
