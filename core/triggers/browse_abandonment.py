"""Browse abandonment: repeated views of a product (or category), then no cart add or order.

A view that makes ``min_views`` views of one product, or else of one category,
within ``window`` arms a deadline ``delay`` after the newest view of that burst;
more views push it back (re-armed when it pops). When it fires, a cart change or
an order since the burst began (``window`` before its newest view) means the
customer moved on, so nothing is sent; ``add_to_cart`` and ``order_placed``
also cancel the pending deadline at once. Late views never count (they are not
kept as recent views), and a customer inside the cooldown gets no new deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import recommend
from core.config import AT_LEAST_ONE, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, HOUR, format_duration
from core.facts import view_burst
from core.model import (
    ORDER_PLACED_AT,
    VIEW_CATEGORY,
    VIEW_EVENT,
    VIEW_PRODUCT,
    VIEW_TS,
    Event,
    View,
)
from core.trigger import TriggerDoc, TriggerSpec

NAME = "browse_abandonment"
TIMER = "browse_abandonment"
_AT = "browse_abandonment.at"  # newest view time of the pending burst


@dataclass(frozen=True, slots=True)
class BrowseAbandonmentConfig(TriggerConfig):
    min_views: int = setting(2, limit=AT_LEAST_ONE)  # views of one product (or category)...
    window: int = duration(1 * HOUR)  # ...within this
    delay: int = duration(1 * HOUR)
    channel: str = "email"
    cooldown: int = duration(1 * DAY)
    template: str = "Still thinking about {product_id}?"


def on_event(ctx: Ctx, ev: Event, cfg: BrowseAbandonmentConfig, late: bool) -> None:
    state = ctx.state
    marks = state.marks
    if ev.type != "product_view":
        at = marks.get(_AT)
        if at is not None and ev.ts >= at - cfg.window:
            ctx.cancel_timer(TIMER)
            del marks[_AT]
        return
    if late:
        return
    last = marks.get(NAME)
    if cfg.cooldown and last is not None and ctx.now - last < cfg.cooldown:
        return
    window, min_views = cfg.window, cfg.min_views
    newest = view_burst(state, VIEW_PRODUCT, ev.product_id, ev.ts, window, min_views, False)
    if not newest:
        newest = view_burst(state, VIEW_CATEGORY, ev.category, ev.ts, window, min_views, False)
        if not newest:
            return
    at = marks.get(_AT, 0)
    if newest > at:
        marks[_AT] = newest
    if TIMER not in state.timers:  # a pending deadline re-arms itself when it pops
        ctx.set_timer(TIMER, marks[_AT] + cfg.delay)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: BrowseAbandonmentConfig) -> None:
    state = ctx.state
    at = state.marks.get(_AT)
    if at is None:
        return
    if at + cfg.delay > due:  # viewed more since: wait on
        ctx.set_timer(TIMER, at + cfg.delay)
        return
    del state.marks[_AT]
    since = at - cfg.window
    if state.cart_at >= since or (state.orders and state.orders[-1][ORDER_PLACED_AT] >= since):
        return
    burst = _burst(state.views, at, cfg)
    if burst is None:
        return
    field, key, views = burst
    newest = views[-1]
    what = f"product {key}" if field == VIEW_PRODUCT else f"category {key}"
    event_ids = [v[VIEW_EVENT] for v in views]
    payload = {
        "product_id": newest[VIEW_PRODUCT],
        "category": newest[VIEW_CATEGORY],
        "views": len(views),
        "product_ids": sorted({v[VIEW_PRODUCT] for v in views}),
    }
    recommended = recommend.for_payload(
        ctx, [v[VIEW_PRODUCT] for v in reversed(views)], (), [v[VIEW_CATEGORY] for v in views]
    )
    if recommended is not None:
        payload["recommended"] = recommended
    ctx.decide(
        NAME,
        cfg,
        newest[VIEW_EVENT],
        reason=f"{len(views)} views of {what} within {format_duration(cfg.window)} "
        f"(events {', '.join(event_ids)}), no cart add or order "
        f"within {format_duration(cfg.delay)}",
        payload=payload,
        sources=tuple(event_ids),
        cause_ts=due,
    )


_Burst = tuple[int, str, list[View]]  # (VIEW_PRODUCT or VIEW_CATEGORY, its value, the views)


def _burst(views: list[View], at: int, cfg: BrowseAbandonmentConfig) -> _Burst | None:
    """The views of the burst ending at ``at``: the most viewed product, else category."""
    recent = sorted((v for v in views if at - cfg.window <= v[VIEW_TS] <= at), key=_ts)
    for field in (VIEW_PRODUCT, VIEW_CATEGORY):
        groups: dict[str, list[View]] = {}
        for view in recent:
            if view[field] is not None:
                groups.setdefault(view[field], []).append(view)
        best = max(groups.items(), key=_most_then_newest, default=None)
        if best is not None:
            key, grouped = best
            if len(grouped) >= cfg.min_views:
                return field, key, grouped
    return None


def _ts(view: View) -> int:
    return view[VIEW_TS]


def _most_then_newest(group: tuple[str, list[View]]) -> tuple[int, int]:
    _, views = group
    return len(views), views[-1][VIEW_TS]


SPEC = TriggerSpec(
    name=NAME,
    config=BrowseAbandonmentConfig,
    template_vars=frozenset({"product_id", "category", "views", "recommended"}),
    events=frozenset({"product_view", "add_to_cart", "order_placed"}),
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    doc=TriggerDoc(
        fires_when="`min_views` views of a product or category within `window`, "
        "then no cart add or order for `delay`",
        key_parameters=("min_views", "window", "delay", "cooldown"),
        exits="add_to_cart / order cancel; no new deadline inside the cooldown",
    ),
)
