"""The core's entry points: state + event (or timer) + clock -> Step.

The live Faust agent, ``kairos replay`` and the tests all call these, so a
behaviour seen in one is the behaviour of all three. Nothing here does I/O.
"""

from __future__ import annotations

from core import attribution, facts, identity, journey
from core.config import Config
from core.context import Ctx
from core.hooks import Hooks, bound
from core.model import CustomerState, Event, Profile, Step


def new_state(customer_id: str) -> CustomerState:
    return CustomerState(customer_id)


def on_event(state: CustomerState, ev: Event, now: int, cfg: Config) -> Step:
    """Apply one event: de-duplicate, update facts and stage, run the interested triggers."""
    ctx = Ctx(state, now, cfg)
    engine_cfg = cfg.engine
    if facts.is_duplicate(state, ev, engine_cfg):
        ctx.duplicate = True
        return ctx
    late = ctx.late = ev.ts < state.max_ts - engine_cfg.late_grace
    facts.apply(state, ev, engine_cfg, late)
    if ev.anonymous_id is not None:
        anonymous_id = identity.wants_merge(state, ev)
        if anonymous_id is not None:
            ctx.merges.append(anonymous_id)
    etype = ev.type
    if etype == "order_placed":
        attribution.on_order(ctx, ev)
    journey.on_event(ctx, ev)
    hooks = bound(cfg)
    pre = hooks.pre  # tags and lead scores, when configured (core.segments)
    if pre is not None:
        pre(ctx, ev)
    for hook, tcfg in hooks.by_event.get(etype, ()):
        hook(ctx, ev, tcfg, late)
    if ctx.stage_changes:  # rare: skip the call otherwise
        _stage_hooks(ctx, hooks)
    post = hooks.post  # watched audiences, when configured
    if post is not None:
        post(ctx, ev.event_id)
    return ctx


def on_timer(state: CustomerState, kind: str, due: int, now: int, cfg: Config) -> Step:
    """Fire the customer's timer ``kind`` due at ``due``; stale or cancelled timers do nothing.

    A timer of a disabled trigger is dropped when due (documented rule: turning a
    trigger off suppresses its pending timers; turning it back on starts fresh), as
    is one of a trigger no longer registered.
    """
    ctx = Ctx(state, now, cfg)
    if state.timers.get(kind) != due:
        return ctx
    del state.timers[kind]
    hooks = bound(cfg)
    hook, tcfg = hooks.by_timer.get(kind, _NO_HOOK)
    if hook is not None:
        hook(ctx, kind, due, tcfg)
        if ctx.stage_changes:
            _stage_hooks(ctx, hooks)
        post = hooks.post
        if post is not None:
            post(ctx, f"{kind}@{due}")
    return ctx


def on_profile(
    state: CustomerState, profile: Profile | None, now: int = 0, cfg: Config | None = None
) -> Step:
    """Join the latest profile; ``None`` forgets the customer's personal data.

    With ``cfg``, the triggers that follow profiles (``birthday``) run at ``now``.
    """
    state.profile = profile
    if cfg is None:
        return Step(state)
    ctx = Ctx(state, now, cfg)
    for hook, tcfg in bound(cfg).on_profile:
        hook(ctx, tcfg)
    return ctx


_NO_HOOK = (None, None)  # a timer of a trigger no longer registered: dropped when due


def _stage_hooks(ctx: Ctx, hooks: Hooks) -> None:
    for change in list(ctx.stage_changes):
        for hook, tcfg in hooks.by_stage.get(change.to_stage, ()):
            hook(ctx, change, tcfg)
