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
from typing import Any

from core.config import AT_LEAST_ONE, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, HOUR, format_duration
from core.facts import view_burst
from core.model import Event
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
    newest = view_burst(state, 1, ev.product_id, ev.ts, window, min_views, False)
    if not newest:
        newest = view_burst(state, 2, ev.category, ev.ts, window, min_views, False)
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
    if state.cart_at >= since or (state.orders and state.orders[-1][0] >= since):
        return
    burst = _burst(state.views, at, cfg)
    if burst is None:
        return
    field, key, views = burst
    product_id = views[-1][1]
    category = views[-1][2]
    what = f"product {key}" if field == 1 else f"category {key}"
    ctx.decide(
        NAME,
        cfg,
        views[-1][3],
        reason=f"{len(views)} views of {what} within {format_duration(cfg.window)} "
        f"(events {', '.join(v[3] for v in views)}), no cart add or order "
        f"within {format_duration(cfg.delay)}",
        payload={
            "product_id": product_id,
            "category": category,
            "views": len(views),
            "product_ids": sorted({v[1] for v in views}),
        },
        sources=tuple(v[3] for v in views),
        cause_ts=due,
    )


def _burst(
    views: list[Any], at: int, cfg: BrowseAbandonmentConfig
) -> tuple[int, str, list[Any]] | None:
    """The views of the burst ending at ``at``: the most viewed product, else category."""
    recent = sorted((v for v in views if at - cfg.window <= v[0] <= at), key=lambda v: v[0])
    for field in (1, 2):
        groups: dict[str, list[Any]] = {}
        for view in recent:
            if view[field] is not None:
                groups.setdefault(view[field], []).append(view)
        best = max(groups.items(), key=lambda g: (len(g[1]), g[1][-1][0]), default=None)
        if best is not None and len(best[1]) >= cfg.min_views:
            return field, best[0], best[1]
    return None


SPEC = TriggerSpec(
    name=NAME,
    config=BrowseAbandonmentConfig,
    template_vars=frozenset({"product_id", "category", "views"}),
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
