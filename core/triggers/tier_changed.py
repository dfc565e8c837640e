"""Tier changes: congratulate an upgrade at once, warn ``warn_ahead`` before a downgrade.

Needs ``membership.enabled`` (the ledger, ``core.points``); does nothing without it.
An upgrade is decided with the event that earned it (once per tier reached: the
mark holds the tier last announced). A downgrade comes when earnings leave the tier
window (``core.tiers.downgrade``): one timer is armed ``warn_ahead`` before it, fires
the warning (with the points still needed to stay), then re-arms at the downgrade
itself to note the new tier and look for the next one. A cancel or refund that drops
the tier at once sends nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core import points, tiers
from core.config import TriggerConfig, duration
from core.context import Ctx
from core.durations import DAY, iso
from core.model import Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "tier_changed"
TIMER = "tier_changed"
_TIER = "tier_changed.tier"  # the tier index last announced (or noted)
_WARNED = "tier_changed.warned"  # the downgrade time already warned of


@dataclass(frozen=True, slots=True)
class TierChangedConfig(TriggerConfig):
    enabled: bool = False  # needs membership: off until configured
    warn_ahead: int = duration(14 * DAY)
    channel: str = "email"
    template: str = "You are now {tier}!"


def on_event(ctx: Ctx, ev: Event, cfg: TierChangedConfig, late: bool) -> None:
    mcfg = ctx.cfg.membership
    if not mcfg.enabled:
        return
    state, now = ctx.state, ctx.now
    level = tiers.current(state.member, now, mcfg)
    was = state.marks.get(_TIER, 0)
    if level != was:
        state.marks[_TIER] = level
    if level > was:
        qualifying = points.qualifying(state.member, now, mcfg)
        ctx.decide(
            NAME,
            cfg,
            ("up", level, ev.event_id),
            reason=f"upgrade to {tiers.name(level, mcfg)}: {qualifying} {mcfg.tier_basis} "
            f"within the tier window reach {tiers.threshold(level, mcfg):g}",
            payload=_payload(ctx, "upgrade", level, was),
            sources=(ev.event_id,),
            cause_ts=ev.ts,
        )
    _arm(ctx, cfg)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: TierChangedConfig) -> None:
    mcfg = ctx.cfg.membership
    if not mcfg.enabled:
        return
    state, now = ctx.state, ctx.now
    level = tiers.current(state.member, now, mcfg)
    if level < state.marks.get(_TIER, 0):  # the downgrade warned of has happened
        state.marks[_TIER] = level
    nxt = tiers.downgrade(state.member, now, mcfg)
    if nxt is not None and nxt[0] - cfg.warn_ahead <= now and state.marks.get(_WARNED) != nxt[0]:
        at, to = nxt
        state.marks[_WARNED] = at
        basis = mcfg.tier_basis
        need = tiers.threshold(level, mcfg) - points.qualifying(state.member, at, mcfg)
        payload = _payload(ctx, "downgrade_warning", to, level)
        payload["downgrade_at"] = at
        payload["needed"] = math.ceil(need) if basis == "points" else round(need, 2)
        ctx.decide(
            NAME,
            cfg,
            ("down", at),
            reason=f"{tiers.name(level, mcfg)} drops to {tiers.name(to, mcfg)} at {iso(at)} "
            f"unless {payload['needed']} more {basis} are earned",
            payload=payload,
            sources=(),
            cause_ts=due,
        )
    _arm(ctx, cfg)


def _payload(ctx: Ctx, kind: str, level: int, was: int) -> dict[str, object]:
    mcfg = ctx.cfg.membership
    return {
        "kind": kind,
        "tier": tiers.name(level, mcfg),
        "previous_tier": tiers.name(was, mcfg),
        "points": points.balance(ctx.state.member, ctx.now, mcfg),
    }


def _arm(ctx: Ctx, cfg: TierChangedConfig) -> None:
    """One timer: at the warning for the next downgrade, or at the downgrade once warned."""
    nxt = tiers.downgrade(ctx.state.member, ctx.now, ctx.cfg.membership)
    if nxt is None:
        ctx.cancel_timer(TIMER)
        return
    at = nxt[0]
    due = at if ctx.state.marks.get(_WARNED) == at else max(at - cfg.warn_ahead, ctx.now)
    if ctx.state.timers.get(TIMER) != due:
        ctx.set_timer(TIMER, due)


SPEC = TriggerSpec(
    name=NAME,
    config=TierChangedConfig,
    template_vars=frozenset({"kind", "tier", "previous_tier", "points", "downgrade_at", "needed"}),
    events=points.EARN_EVENTS | points.TAKE_BACK | {"review"},
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    doc=TriggerDoc(
        fires_when="an order or review lifts the customer's tier; `warn_ahead` before "
        "earnings leave the tier window and the tier would drop",
        key_parameters=("warn_ahead",),
        exits="needs `membership.enabled`; once per tier reached and per downgrade date",
    ),
)
