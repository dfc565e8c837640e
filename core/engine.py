"""The core's entry points: state + event (or timer) + clock -> Step.

The live Faust agent, ``kairos replay`` and the tests all call these, so a
behaviour seen in one is the behaviour of all three. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import attribution, facts, identity, journey
from core.config import Config
from core.context import Ctx
from core.model import CustomerState, Event, Profile, Step
from core.triggers import ALL

Hook = Callable[..., None]
Bound = tuple[tuple[Hook, Any], ...]  # (hook, its trigger's config) in catalog order


class _Hooks:
    """Which hooks run for an event type, timer kind or stage under one config.

    Built once per config (configs are immutable and replaced whole when they
    change), so the per-event path neither looks up trigger configs nor skips
    disabled triggers one by one.
    """

    __slots__ = ("by_event", "by_stage", "by_timer", "cfg")

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.by_event: dict[str, Bound] = {}
        self.by_stage: dict[str, Bound] = {}
        # A disabled trigger's timer maps to no hook: it is dropped when due.
        self.by_timer: dict[str, tuple[Hook | None, Any]] = {
            journey.TIMER: (journey.on_timer, cfg.journey)
        }
        for module in ALL:
            tcfg = cfg.triggers[module.NAME]
            for kind in getattr(module, "TIMERS", ()):
                self.by_timer[kind] = (module.on_timer if tcfg.enabled else None, tcfg)
            if not tcfg.enabled:
                continue
            for etype in getattr(module, "EVENTS", ()):
                self.by_event[etype] = (*self.by_event.get(etype, ()), (module.on_event, tcfg))
            for stage in getattr(module, "STAGES", ()):
                self.by_stage[stage] = (*self.by_stage.get(stage, ()), (module.on_stage, tcfg))


_HOOKS: dict[int, _Hooks] = {}  # by id(config); each entry keeps its config alive


def _hooks(cfg: Config) -> _Hooks:
    hooks = _HOOKS.get(id(cfg))
    if hooks is None or hooks.cfg is not cfg:
        if len(_HOOKS) >= 32:  # live config changes are rare; tests make many
            _HOOKS.clear()
        hooks = _HOOKS[id(cfg)] = _Hooks(cfg)
    return hooks


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
    hooks = _hooks(cfg)
    for hook, tcfg in hooks.by_event.get(etype, ()):
        hook(ctx, ev, tcfg, late)
    if ctx.stage_changes:  # rare: skip the call otherwise
        _stage_hooks(ctx, hooks)
    return ctx


def on_timer(state: CustomerState, kind: str, due: int, now: int, cfg: Config) -> Step:
    """Fire the customer's timer ``kind`` due at ``due``; stale or cancelled timers do nothing.

    A timer of a disabled trigger is dropped when due (documented rule: turning a
    trigger off suppresses its pending timers; turning it back on starts fresh).
    """
    ctx = Ctx(state, now, cfg)
    if state.timers.get(kind) != due:
        return ctx
    del state.timers[kind]
    hooks = _hooks(cfg)
    hook, tcfg = hooks.by_timer[kind]
    if hook is not None:
        hook(ctx, kind, due, tcfg)
        if ctx.stage_changes:
            _stage_hooks(ctx, hooks)
    return ctx


def on_profile(state: CustomerState, profile: Profile | None) -> None:
    """Join the latest profile; ``None`` forgets the customer's personal data."""
    state.profile = profile


def _stage_hooks(ctx: Ctx, hooks: _Hooks) -> None:
    for change in list(ctx.stage_changes):
        for hook, tcfg in hooks.by_stage.get(change.to_stage, ()):
            hook(ctx, change, tcfg)
