"""The membership points ledger: earned from orders and reviews, taken back by cancels and
refunds, lapsing a fixed time after the day they were earned.

Kept in ``CustomerState.member`` (plain JSON, persisted with the state):

- ``"d"``: one bucket per UTC day with earnings, oldest first:
  ``[day, points, spend, review_bonus_given]`` (``day`` = epoch ms // DAY);
- ``"o"``: the orders credited (or refused), oldest first: ``[order_id, day, points,
  spend, reversed]``.

Every figure is a function of the buckets and the clock only, so it does not depend on
the order events arrive in (a late order lands in its own day's bucket). Whole UTC days
make the aggregation exact: points earned on day D lapse at the end of day
``D + expiry`` (in whole days), and count towards a tier until the end of day
``D + tier_window``. Exactness under duplicates: an order is credited once per
``order_id`` and a review bonus once per day, whatever the engine's dedupe memory
still holds. History is bounded: at most ``max_days`` day buckets and ``max_days``
orders; past that the oldest day folds into the next one (its points then live as long
as that day's: in the customer's favour), and a cancel or refund of an order older than
the orders kept takes nothing back (documented in the README).
"""

from __future__ import annotations

import math
from typing import Any

from core.config import MembershipConfig
from core.context import Ctx
from core.durations import DAY
from core.facts import find_order
from core.model import ORDER_TOTAL, CustomerState, Event

Bucket = list[int | float]  # [day, points, spend, review_bonus_given (0/1)]
B_DAY, B_POINTS, B_SPEND, B_REVIEW = 0, 1, 2, 3
Credit = list[Any]  # [order_id, day, points, spend, reversed (0/1)]
C_ORDER, C_DAY, C_POINTS, C_SPEND, C_REVERSED = 0, 1, 2, 3, 4

EARN_EVENTS = frozenset({"order_placed", "order_paid"})
TAKE_BACK = frozenset({"order_cancelled", "order_refunded"})


def ledger_events(cfg: MembershipConfig) -> frozenset[str]:
    """The event types the ledger reads under ``cfg``."""
    events = {cfg.earn_on, *TAKE_BACK}
    if cfg.review_bonus:
        events.add("review")
    return frozenset(events)


def until(day: int, period: int) -> int:
    """When something of ``day`` stops counting, for a period in whole days (rounded down)."""
    return (day + period // DAY + 1) * DAY


def on_event(ctx: Ctx, ev: Event, cfg: MembershipConfig, late: bool) -> None:
    """The engine's ledger hook (bound first, before the triggers, by ``core.hooks``)."""
    apply(ctx.state, ev, cfg, ctx.now)


def apply(state: CustomerState, ev: Event, cfg: MembershipConfig, now: int) -> bool:
    """Update the ledger from one event; True if a figure changed."""
    member = state.member
    etype = ev.type
    if etype == cfg.earn_on:
        changed = _earn(state, member, ev, cfg)
    elif etype in TAKE_BACK:
        changed = _take_back(member, ev, cfg)
    elif etype == "review" and cfg.review_bonus:
        bucket = _bucket(member, ev.ts // DAY)
        changed = not bucket[B_REVIEW]
        if changed:
            bucket[B_REVIEW] = 1
            bucket[B_POINTS] += cfg.review_bonus
    else:
        return False
    if changed:
        _bound(member, cfg, now)
    return changed


def _earn(state: CustomerState, member: dict[str, Any], ev: Event, cfg: MembershipConfig) -> bool:
    credits: list[Credit] = member.setdefault("o", [])
    if ev.order_id is None or any(c[C_ORDER] == ev.order_id for c in credits):
        return False  # credited (or cancelled) already: a duplicate or a re-sent order
    total = ev.total
    if total is None:  # order_paid: the total is the placed order's
        order = find_order(state, ev.order_id)
        if order is None:
            return False  # an order not seen: nothing to credit from
        total = order[ORDER_TOTAL]
    spend = round(total or 0.0, 2)
    points = math.floor(spend * cfg.points_per_unit + 1e-9)
    day = ev.ts // DAY
    credits.append([ev.order_id, day, points, spend, 0])
    bucket = _bucket(member, day)
    bucket[B_POINTS] += points
    bucket[B_SPEND] = round(bucket[B_SPEND] + spend, 2)
    return True


def _take_back(member: dict[str, Any], ev: Event, cfg: MembershipConfig) -> bool:
    credits: list[Credit] = member.setdefault("o", [])
    for credit in credits:
        if credit[C_ORDER] == ev.order_id:
            if credit[C_REVERSED]:
                return False  # a cancel and then a refund take back once
            credit[C_REVERSED] = 1
            for bucket in member.get("d", ()):
                if bucket[B_DAY] == credit[C_DAY]:
                    bucket[B_POINTS] = max(0, bucket[B_POINTS] - credit[C_POINTS])
                    bucket[B_SPEND] = max(0.0, round(bucket[B_SPEND] - credit[C_SPEND], 2))
            return True
    # Cancelled before it was credited (earn_on: order_paid, or a late order_placed):
    # remember it, so the order never earns.
    credits.append([ev.order_id, ev.ts // DAY, 0, 0.0, 1])
    return True


def _bucket(member: dict[str, Any], day: int) -> Bucket:
    days: list[Bucket] = member.setdefault("d", [])
    for i in range(len(days) - 1, -1, -1):  # usually today's, the last
        have = days[i][B_DAY]
        if have == day:
            return days[i]
        if have < day:
            bucket: Bucket = [day, 0, 0.0, 0]
            days.insert(i + 1, bucket)
            return bucket
    bucket = [day, 0, 0.0, 0]
    days.insert(0, bucket)
    return bucket


def _bound(member: dict[str, Any], cfg: MembershipConfig, now: int) -> None:
    days: list[Bucket] = member.get("d", [])
    keep = max(cfg.expiry, cfg.tier_window)
    while days and until(int(days[0][B_DAY]), keep) <= now:
        del days[0]  # lapsed and out of the tier window: it counts for nothing any more
    while len(days) > cfg.max_days:
        oldest = days.pop(0)
        nxt = days[0]
        nxt[B_POINTS] += oldest[B_POINTS]
        nxt[B_SPEND] = round(nxt[B_SPEND] + oldest[B_SPEND], 2)
    credits: list[Credit] = member.get("o", [])
    if len(credits) > cfg.max_days:
        del credits[: len(credits) - cfg.max_days]


def balance(member: dict[str, Any], now: int, cfg: MembershipConfig) -> int:
    """Points valid at ``now``."""
    return int(sum(b[B_POINTS] for b in member.get("d", ()) if until(b[B_DAY], cfg.expiry) > now))


def lapses(member: dict[str, Any], now: int, cfg: MembershipConfig) -> list[tuple[int, int]]:
    """``(when, points)`` of each future lapse with points, soonest first."""
    out = []
    for b in member.get("d", ()):
        at = until(int(b[B_DAY]), cfg.expiry)
        if at > now and b[B_POINTS] > 0:
            out.append((at, int(b[B_POINTS])))
    return out


def qualifying(member: dict[str, Any], now: int, cfg: MembershipConfig) -> float:
    """What counts towards a tier at ``now``: points or spend earned within the window."""
    field = B_POINTS if cfg.tier_basis == "points" else B_SPEND
    window = cfg.tier_window
    return round(sum(b[field] for b in member.get("d", ()) if until(b[B_DAY], window) > now), 2)
