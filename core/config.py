"""The typed configuration: journey thresholds, triggers and contact policy.

Every value has a documented default here; ``config/triggers.yaml`` overrides
them key by key (see ``core.config_file`` for loading and validation).
Durations are milliseconds in code and ``30m``/``2h``/``7d`` in the file;
fields holding one are declared with :func:`duration`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.durations import DAY, HOUR, MINUTE, SECOND

CHANNELS = ("console", "push", "email", "sms", "webhook", "slack", "wecom")


def duration(default_ms: int) -> Any:
    """A dataclass field whose file form is a duration string."""
    return field(default=default_ms, metadata={"duration": True})


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: str = "21:00"  # local time in the customer's timezone
    end: str = "08:00"
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class JourneyConfig:
    at_risk_after: int = duration(30 * DAY)  # a purchaser with no activity this long
    churned_after: int = duration(90 * DAY)
    loyalty_orders: int = 2  # orders within loyalty_window make a loyal customer
    loyalty_window: int = duration(90 * DAY)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    timer_grace: int = duration(2 * SECOND)  # wait this long past a deadline for late exits
    late_grace: int = duration(10 * MINUTE)  # older than newest-seen minus this = late event
    dedupe_horizon: int = duration(1 * DAY)  # event_ids remembered this long...
    dedupe_size: int = 32  # ...and at most this many per customer
    recent_views: int = 16  # product views kept per customer for browse/intent triggers


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """What every trigger has: switch, channel, template and delivery policy hooks."""

    enabled: bool = True
    shadow: bool = False  # decide and record with status "shadow", never send
    channel: str = "push"
    template: str = ""
    priority: int = 50  # higher wins when triggers compete within policy.priority_window
    holdout: float = 0.0  # deterministic share of customers held out as control
    cooldown: int = duration(0)  # minimum time between two sends of this trigger
    attribution_window: int = duration(3 * DAY)


@dataclass(frozen=True, slots=True)
class AbandonedCartConfig(TriggerConfig):
    delay: int = duration(30 * MINUTE)
    min_cart_value: float = 0.0
    reminder_delay: int = duration(0)  # 0 = no second reminder; else after the first
    template: str = "You left {item_count} item(s) worth {cart_value} {currency} in your cart"


@dataclass(frozen=True, slots=True)
class BrowseAbandonmentConfig(TriggerConfig):
    min_views: int = 2  # views of one product (or category) within window
    window: int = duration(1 * HOUR)
    delay: int = duration(1 * HOUR)
    channel: str = "email"
    cooldown: int = duration(1 * DAY)
    template: str = "Still thinking about {product_id}?"


@dataclass(frozen=True, slots=True)
class LimitedTimeOfferConfig(TriggerConfig):
    min_views: int = 3  # views of one product within window
    window: int = duration(10 * MINUTE)
    checkout_attempts: int = 2  # checkouts started without an order
    valid_for: int = duration(2 * HOUR)
    discount_percent: int = 10
    cooldown: int = duration(7 * DAY)
    priority: int = 80
    template: str = "{discount_percent}% off {product_id} with code {code}, until {expires_at}"


@dataclass(frozen=True, slots=True)
class PostPurchaseConfig(TriggerConfig):
    on: str = "order_paid"  # or order_placed
    delay: int = duration(3 * DAY)
    kind: str = "review_request"  # or cross_sell
    channel: str = "email"
    template: str = "How was your order {order_id}?"


@dataclass(frozen=True, slots=True)
class WelcomeConfig(TriggerConfig):
    on_first_activity: bool = True
    on_first_purchase: bool = True
    channel: str = "email"
    template: str = "Welcome!"


@dataclass(frozen=True, slots=True)
class ChurnAlertConfig(TriggerConfig):
    channel: str = "slack"  # the customer-success team's channel
    short_window: int = duration(7 * DAY)
    long_window: int = duration(30 * DAY)
    drop_ratio: float = 0.25  # short-window rate below this share of the long-window rate
    min_long_activity: int = 8  # engagement drop needs this much history to mean anything
    win_back_offer: bool = False  # also send the customer a win_back offer
    cooldown: int = duration(30 * DAY)
    template: str = "Customer {customer_id} is at risk: {reason}"


@dataclass(frozen=True, slots=True)
class WinBackConfig(TriggerConfig):
    channel: str = "email"
    discount_percent: int = 15
    valid_for: int = duration(7 * DAY)
    template: str = "We miss you: {discount_percent}% off with code {code}"


@dataclass(frozen=True, slots=True)
class NpsDetractorConfig(TriggerConfig):
    channel: str = "slack"
    max_score: float = 6  # nps 0-6 is a detractor
    review_max_score: float = 2  # reviews at or below this score
    priority: int = 90
    template: str = "Detractor {customer_id} scored {score}"


TRIGGER_TYPES: dict[str, type[TriggerConfig]] = {
    "abandoned_cart": AbandonedCartConfig,
    "browse_abandonment": BrowseAbandonmentConfig,
    "limited_time_offer": LimitedTimeOfferConfig,
    "post_purchase": PostPurchaseConfig,
    "welcome": WelcomeConfig,
    "churn_alert": ChurnAlertConfig,
    "win_back": WinBackConfig,
    "nps_detractor": NpsDetractorConfig,
}


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


def _default_triggers() -> dict[str, TriggerConfig]:
    return {name: cls() for name, cls in TRIGGER_TYPES.items()}


@dataclass(frozen=True, slots=True)
class Config:
    journey: JourneyConfig = JourneyConfig()
    engine: EngineConfig = EngineConfig()
    policy: PolicyConfig = PolicyConfig()
    triggers: dict[str, TriggerConfig] = field(default_factory=_default_triggers)

    def trigger(self, name: str) -> TriggerConfig:
        return self.triggers[name]


DEFAULT = Config()
