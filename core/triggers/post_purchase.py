"""Post-purchase follow-up: a review request or cross-sell ``delay`` after each order.

The clock starts at ``on``: ``order_paid`` (default) or ``order_placed``. One
timer serves every pending order: it is due for the oldest one, and when it
pops it follows up each order whose time has come, then re-arms for the next.
A mark keeps the newest start already followed up, so an order is followed up
once. An order cancelled or refunded before its follow-up gets none; an
``order_paid`` for an order not seen (or no longer remembered) is ignored,
since the follow-up needs the order's total.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import recommend
from core.config import TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, format_duration, iso
from core.model import (
    ORDER_CLOSED,
    ORDER_ID,
    ORDER_PAID_AT,
    ORDER_PAID_EVENT,
    ORDER_PLACED_AT,
    ORDER_PLACED_EVENT,
    ORDER_STATUS,
    ORDER_TOTAL,
    Event,
    Order,
)
from core.trigger import TriggerDoc, TriggerSpec

NAME = "post_purchase"
TIMER = "post_purchase"


@dataclass(frozen=True, slots=True)
class PostPurchaseConfig(TriggerConfig):
    on: str = setting("order_paid", choices=("order_paid", "order_placed"))  # starts the clock
    delay: int = duration(3 * DAY)
    kind: str = setting("review_request", choices=("review_request", "cross_sell"))
    channel: str = "email"
    template: str = "How was your order {order_id}?"


_DONE = "post_purchase.done"  # start time of the newest order followed up


def _start(order: Order, cfg: PostPurchaseConfig) -> int:
    """When this order's follow-up clock started (0: not yet)."""
    return order[ORDER_PLACED_AT] if cfg.on == "order_placed" else order[ORDER_PAID_AT]


def _next_due(ctx: Ctx, cfg: PostPurchaseConfig) -> int | None:
    done = ctx.state.marks.get(_DONE, 0)
    starts = [
        s
        for o in ctx.state.orders
        if o[ORDER_STATUS] != ORDER_CLOSED and (s := _start(o, cfg)) and s > done
    ]
    return min(starts) + cfg.delay if starts else None


def on_event(ctx: Ctx, ev: Event, cfg: PostPurchaseConfig, late: bool) -> None:
    if ev.type == cfg.on or ev.type in ("order_cancelled", "order_refunded"):
        due = _next_due(ctx, cfg)
        pending = ctx.state.timers.get(TIMER)
        if due is None:
            ctx.cancel_timer(TIMER)
        elif pending is None or due < pending:  # a later deadline re-arms when it pops
            ctx.set_timer(TIMER, due)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: PostPurchaseConfig) -> None:
    state = ctx.state
    done = state.marks.get(_DONE, 0)
    ready = sorted(
        (
            o
            for o in state.orders
            if o[ORDER_STATUS] != ORDER_CLOSED and done < _start(o, cfg) <= due - cfg.delay
        ),
        key=lambda o: _start(o, cfg),
    )
    for order in ready:
        start = _start(order, cfg)
        state.marks[_DONE] = start
        order_id, total = order[ORDER_ID], order[ORDER_TOTAL]
        payload = {
            "order_id": order_id,
            "kind": cfg.kind,
            "total": total,
            "currency": state.currency or "",
        }
        if ctx.cfg.recommend.enabled:  # from what was bought lately, newest first
            bought = recommend.bought(state)[::-1]
            payload["recommended"] = recommend.for_payload(ctx, bought, ())
        ctx.decide(
            NAME,
            cfg,
            order_id,
            reason=f"{cfg.kind} for order {order_id} ({total}): {cfg.on} at {iso(start)}, "
            f"not cancelled or refunded within {format_duration(cfg.delay)}",
            payload=payload,
            sources=tuple(e for e in (order[ORDER_PLACED_EVENT], order[ORDER_PAID_EVENT]) if e),
            cause_ts=start + cfg.delay,
        )
    following = _next_due(ctx, cfg)
    if following is not None:
        ctx.set_timer(TIMER, following)


SPEC = TriggerSpec(
    name=NAME,
    config=PostPurchaseConfig,
    template_vars=frozenset({"order_id", "kind", "total", "currency", "recommended"}),
    events=frozenset({"order_placed", "order_paid", "order_cancelled", "order_refunded"}),
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    doc=TriggerDoc(
        fires_when="`delay` after `order_paid` (or `order_placed`, setting `on`)",
        key_parameters=("on", "delay", "kind"),
        exits="a cancel or refund before cancels; once per order",
    ),
)
