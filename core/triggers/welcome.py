"""Welcome: greet a customer on their first activity and again on their first order.

First activity is the journey leaving ``new`` (a stage hook, so it fires once
whatever the first event is). When that first event is itself an order and
``on_first_purchase`` is on, only the first-purchase welcome goes out: one
message, not two at once. First purchase is the ``order_placed`` that makes the
order count one.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import TriggerConfig
from core.context import Ctx
from core.model import Event, StageChange
from core.trigger import TriggerDoc, TriggerSpec

NAME = "welcome"
_BUYERS = frozenset({"purchase", "loyalty"})


@dataclass(frozen=True, slots=True)
class WelcomeConfig(TriggerConfig):
    on_first_activity: bool = True
    on_first_purchase: bool = True
    channel: str = "email"
    template: str = "Welcome!"


def on_event(ctx: Ctx, ev: Event, cfg: WelcomeConfig, late: bool) -> None:
    if not cfg.on_first_purchase or ctx.state.order_count != 1:
        return
    ctx.decide(
        NAME,
        cfg,
        "first_purchase",
        reason=f"first order {ev.order_id} (event {ev.event_id})",
        payload={"reason": "first purchase", "order_id": ev.order_id},
        sources=(ev.event_id,),
        cause_ts=ev.ts,
    )


def on_stage(ctx: Ctx, change: StageChange, cfg: WelcomeConfig) -> None:
    if change.from_stage != "new" or not cfg.on_first_activity:
        return
    if cfg.on_first_purchase and change.to_stage in _BUYERS:
        return  # the first-purchase welcome covers it
    ctx.decide(
        NAME,
        cfg,
        "first_activity",
        reason=f"first activity (event {change.event_id}), stage new -> {change.to_stage}",
        payload={"reason": "first activity"},
        sources=(change.event_id,) if change.event_id else (),
        cause_ts=change.at,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=WelcomeConfig,
    template_vars=frozenset({"reason"}),
    events=frozenset({"order_placed"}),
    on_event=on_event,
    stages=frozenset({"awareness", "interest", "consideration", "purchase", "loyalty"}),
    on_stage=on_stage,
    doc=TriggerDoc(
        fires_when="first activity, and first purchase",
        key_parameters=("on_first_activity", "on_first_purchase"),
        exits="once each; a first event that is an order gets one welcome, not two",
    ),
)
