"""The names of the audience language: what each reads from a customer's state.

``core.audience_expr`` parses and checks expressions; this module is their vocabulary:
each name's type and getter ``(state, now) -> value``, the functions over a period and
what they can see. A value that is not there is ``None`` (``null`` in the language).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from core import scores
from core.durations import DAY
from core.facts import cart_value
from core.model import ORDER_PLACED_AT, ORDER_TOTAL, STAGES, CustomerState
from core.policy import has_consent
from core.windows import HORIZON, total

Getter = Callable[[CustomerState, int], Any]

# Types of the checker. ANY: a profile attribute, whatever the producer sent.
NUM, BOOL, TEXT, LIST, DUR, ANY, NULL = (
    "number",
    "true/false",
    "text",
    "list",
    "duration",
    "any",
    "null",
)


def _days_since(ts: int | None, now: int) -> float | None:
    return None if not ts else round(max(0, now - ts) / DAY, 4)


def _profile_attr(state: CustomerState, name: str) -> Any:
    profile = state.profile
    return None if profile is None else profile.attributes.get(name)


def all_tags(state: CustomerState) -> list[str]:
    """Tags set by rules, then those of the profile (``attributes.tags``)."""
    extra = _profile_attr(state, "tags")
    if not isinstance(extra, list) or not extra:
        return state.tags
    return state.tags + [t for t in extra if isinstance(t, str) and t not in state.tags]


def _locale_part(state: CustomerState, index: int) -> str | None:
    profile = state.profile
    if profile is None or not profile.locale:
        return None
    parts = profile.locale.replace("_", "-").split("-")
    if index >= len(parts):
        return None
    part = parts[index]
    return part.lower() if index == 0 else part.upper()


def _country(state: CustomerState, now: int) -> Any:
    value = _profile_attr(state, "country")
    return value if value is not None else _locale_part(state, 1)


def _birthday(state: CustomerState) -> tuple[int, int] | None:
    value = _profile_attr(state, "birthday")
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    try:
        month, day = int(parts[-2]), int(parts[-1])
        date(2000, month, day)  # a leap year: 02-29 is a birthday
    except (ValueError, IndexError):
        return None
    return month, day


def _days_to_birthday(state: CustomerState, now: int) -> int | None:
    md = _birthday(state)
    if md is None:
        return None
    today = date.fromtimestamp(now / 1000) if now > 0 else date(1970, 1, 1)
    for year in (today.year, today.year + 1, today.year + 2):
        try:
            next_one = date(year, *md)
        except ValueError:  # 02-29 outside a leap year
            continue
        if next_one >= today:
            return (next_one - today).days
    return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


NAMES: dict[str, tuple[str, Getter]] = {
    "stage": (TEXT, lambda s, now: s.stage),
    "order_count": (NUM, lambda s, now: s.order_count),
    "revenue": (NUM, lambda s, now: s.revenue),
    "cart_value": (NUM, lambda s, now: cart_value(s)),
    "cart_items": (NUM, lambda s, now: sum(int(line[0]) for line in s.cart.values())),
    "days_since_order": (NUM, lambda s, now: _days_since(scores.last_order_at(s), now)),
    "days_since_active": (NUM, lambda s, now: _days_since(s.last_active, now)),
    "days_since_first_seen": (NUM, lambda s, now: _days_since(s.first_seen, now)),
    "tags": (LIST, lambda s, now: all_tags(s)),
    "timezone": (TEXT, lambda s, now: s.profile.timezone if s.profile else None),
    "locale": (TEXT, lambda s, now: s.profile.locale if s.profile else None),
    "language": (TEXT, lambda s, now: _locale_part(s, 0)),
    "country": (ANY, _country),
    "birthday": (TEXT, lambda s, now: _text_or_none(_profile_attr(s, "birthday"))),
    "days_to_birthday": (NUM, _days_to_birthday),
    "consent.email": (BOOL, lambda s, now: has_consent(s, "email")),
    "consent.sms": (BOOL, lambda s, now: has_consent(s, "sms")),
    "consent.push": (BOOL, lambda s, now: has_consent(s, "push")),
}
VOCAB = {"stage": STAGES, "rfm.segment": scores.RFM_SEGMENTS}
SCORE_NAMES = ("rfm.r", "rfm.f", "rfm.m", "rfm.segment", "clv", "lead")


def _count_fn(counter: str | None) -> Callable[[int], Getter]:
    def make(period: int) -> Getter:
        if counter is None:  # every counter: all activity

            def activity(s: CustomerState, now: int) -> int:
                return sum(total(b, now, period) for b in s.counts.values())

            return activity

        def count(s: CustomerState, now: int) -> int:
            buckets = s.counts.get(counter)
            return total(buckets, now, period) if buckets else 0

        return count

    return make


def _orders_in(period: int) -> Getter:
    def orders(s: CustomerState, now: int) -> int:
        return sum(1 for o in s.orders if o[ORDER_PLACED_AT] > now - period)

    return orders


def _revenue_in(period: int) -> Getter:
    def revenue(s: CustomerState, now: int) -> float:
        return round(sum(o[ORDER_TOTAL] for o in s.orders if o[ORDER_PLACED_AT] > now - period), 2)

    return revenue


# name -> (the longest period it can see, or 0 for any; factory of the getter)
FUNCTIONS: dict[str, tuple[int, Callable[[int], Getter]]] = {
    "orders_in": (0, _orders_in),  # the last 10 orders are kept (core.facts)
    "revenue_in": (0, _revenue_in),
    "views_in": (HORIZON, _count_fn("view")),
    "searches_in": (HORIZON, _count_fn("search")),
    "cart_adds_in": (HORIZON, _count_fn("cart")),
    "sessions_in": (HORIZON, _count_fn("session")),
    "engagement_in": (HORIZON, _count_fn("engage")),
    "activity_in": (HORIZON, _count_fn(None)),
}


def attribute(path: list[str]) -> Getter:
    first, rest = path[0], path[1:]

    def get(s: CustomerState, now: int) -> Any:
        profile = s.profile
        if profile is None:
            return None
        value = profile.attributes.get(first)
        for part in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get
