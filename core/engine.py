"""The core's entry points: state + event (or timer) + clock -> Step.

The live Faust agent, ``kairos replay`` and the tests all call these, so a
behaviour seen in one is the behaviour of all three. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from core import attribution, facts, identity, journey
from core.config import Config
from core.context import Ctx
from core.model import CustomerState, Event, Profile, Step
from core.triggers import ALL

Hook = Callable[..., None]


def _index() -> tuple[dict[str, list[tuple[str, Hook]]], dict[str, tuple[str, Hook]], dict]:
    by_event: dict[str, list[tuple[str, Hook]]] = {}
    by_timer: dict[str, tuple[str, Hook]] = {journey.TIMER: ("", journey.on_timer)}
    by_stage: dict[str, list[tuple[str, Hook]]] = {}
    for module in ALL:
        for etype in getattr(module, "EVENTS", ()):
            by_event.setdefault(etype, []).append((module.NAME, module.on_event))
        for kind in getattr(module, "TIMERS", ()):
            by_timer[kind] = (module.NAME, module.on_timer)
        for stage in getattr(module, "STAGES", ()):
            by_stage.setdefault(stage, []).append((module.NAME, module.on_stage))
    return by_event, by_timer, by_stage


_BY_EVENT, _BY_TIMER, _BY_STAGE = _index()


def new_state(customer_id: str) -> CustomerState:
    return CustomerState(customer_id)


def on_event(state: CustomerState, ev: Event, now: int, cfg: Config) -> Step:
    """Apply one event: de-duplicate, update facts and stage, run the interested triggers."""
    ctx = Ctx(state, now, cfg)
    step, engine_cfg, etype = ctx.step, cfg.engine, ev.type  # looked up once: the hot path
    if facts.is_duplicate(state, ev, engine_cfg):
        step.duplicate = True
        return step
    late = ev.ts < state.max_ts - engine_cfg.late_grace
    step.late = late
    facts.apply(state, ev, engine_cfg, late)
    if ev.anonymous_id is not None:
        anonymous_id = identity.wants_merge(state, ev)
        if anonymous_id is not None:
            step.merges.append(anonymous_id)
    if etype == "order_placed":
        attribution.on_order(ctx, ev)
    journey.on_event(ctx, ev)
    triggers = cfg.triggers
    for name, hook in _BY_EVENT.get(etype, ()):
        tcfg = triggers[name]
        if tcfg.enabled:
            hook(ctx, ev, tcfg, late)
    if step.stage_changes:  # rare: skip the call otherwise
        _stage_hooks(ctx)
    return step


def on_timer(state: CustomerState, kind: str, due: int, now: int, cfg: Config) -> Step:
    """Fire the customer's timer ``kind`` due at ``due``; stale or cancelled timers do nothing.

    A timer of a disabled trigger is dropped when due (documented rule: turning a
    trigger off suppresses its pending timers; turning it back on starts fresh).
    """
    ctx = Ctx(state, now, cfg)
    if state.timers.get(kind) != due:
        return ctx.step
    del state.timers[kind]
    name, hook = _BY_TIMER[kind]
    if not name:
        hook(ctx, due)
    elif cfg.triggers[name].enabled:
        hook(ctx, kind, due, cfg.triggers[name])
    _stage_hooks(ctx)
    return ctx.step


def on_profile(state: CustomerState, profile: Profile | None) -> None:
    """Join the latest profile; ``None`` forgets the customer's personal data."""
    state.profile = profile


def _stage_hooks(ctx: Ctx) -> None:
    if not _BY_STAGE or not ctx.step.stage_changes:
        return
    triggers = ctx.cfg.triggers
    for change in list(ctx.step.stage_changes):
        for name, hook in _BY_STAGE.get(change.to_stage, ()):
            tcfg = triggers[name]
            if tcfg.enabled:
                hook(ctx, change, tcfg)
