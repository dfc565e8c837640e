"""Which hooks run under one config, bound once per config from the registered specs.

Configs are immutable and replaced whole when they change, so the per-event path
neither looks up trigger configs nor skips disabled triggers one by one: it reads
one dict entry and calls what is there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core import journey, points, recommend, segments
from core.config import Config, TriggerConfig
from core.context import Ctx
from core.model import Event, StageChange
from core.trigger import (
    EventHook,
    Merge,
    MergeHook,
    ProfileHook,
    StageHook,
    TimerHook,
    TriggerSpec,
)
from core.triggers import SPECS
from core.variants import picker

# (hook, its trigger's config), in registration order
EventHooks = tuple[tuple[EventHook[Any], TriggerConfig], ...]
StageHooks = tuple[tuple[StageHook[Any], TriggerConfig], ...]
MergeHooks = tuple[tuple[MergeHook[Any], TriggerConfig], ...]
ProfileHooks = tuple[tuple[ProfileHook[Any], TriggerConfig], ...]


class Hooks:
    """The hooks of the enabled triggers, by event type, timer kind and stage."""

    __slots__ = ("by_event", "by_stage", "by_timer", "cfg", "on_merge", "on_profile", "post", "pre")

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.by_event: dict[str, EventHooks] = {}
        self.by_stage: dict[str, StageHooks] = {}
        self.on_merge: MergeHooks = ()
        self.on_profile: ProfileHooks = ()
        # A disabled trigger's timer maps to no hook: it is dropped when due.
        self.by_timer: dict[str, tuple[TimerHook[Any] | None, Any]] = {
            journey.TIMER: (journey.on_timer, cfg.journey)
        }
        for spec in SPECS.values():
            tcfg = cfg.triggers.get(spec.name)  # None: registered after this config was made
            if tcfg is not None and not isinstance(tcfg, spec.config):
                raise TypeError(f"triggers.{spec.name}: expected {spec.config.__name__}")
            if tcfg is not None and tcfg.variants:
                spec = _per_variant(spec, tcfg)
            on = tcfg is not None and tcfg.enabled
            for kind in spec.timers:
                self.by_timer[kind] = (spec.on_timer if on else None, tcfg)
            if tcfg is None or not tcfg.enabled:
                continue
            if spec.on_event is not None:
                for etype in spec.events:
                    self.by_event[etype] = (*self.by_event.get(etype, ()), (spec.on_event, tcfg))
            if spec.on_stage is not None:
                for stage in spec.stages:
                    self.by_stage[stage] = (*self.by_stage.get(stage, ()), (spec.on_stage, tcfg))
            for handoff in spec.handoffs:
                self._hand_off(spec.name, handoff.stage, handoff.trigger, handoff.when(tcfg))
            if spec.on_merge is not None:
                self.on_merge = (*self.on_merge, (spec.on_merge, tcfg))
            if spec.on_profile is not None:
                self.on_profile = (*self.on_profile, (spec.on_profile, tcfg))
        # Audiences, tags and scores (core.segments): None unless the config asks for them.
        seg = segments.bound(cfg)
        self.pre: segments.EventStep | None = seg.before if seg.per_event else None
        self.post: segments.AfterStep | None = seg.after if seg.watched else None
        if seg.watched and seg.recheck:
            self.by_timer[segments.TIMER] = (segments.on_timer, seg)
        if cfg.recommend.enabled:  # learns before the triggers recommend
            learn: tuple[EventHook[Any], Any] = (recommend.on_event, cfg.recommend)
            for etype in recommend.LEARN_EVENTS:
                self.by_event[etype] = (learn, *self.by_event.get(etype, ()))
        if cfg.membership.enabled:  # the ledger runs before the triggers that read it
            ledger: tuple[EventHook[Any], Any] = (points.on_event, cfg.membership)
            for etype in points.ledger_events(cfg.membership):
                self.by_event[etype] = (ledger, *self.by_event.get(etype, ()))

    def _hand_off(self, source: str, stage: str, target: str, wanted: bool) -> None:
        other = SPECS.get(target)
        if other is None or other.on_stage is None:
            raise ValueError(f"trigger {source!r} hands off to {target!r}, which has no stage hook")
        tcfg = self.cfg.triggers.get(target)
        if wanted and tcfg is not None and tcfg.enabled:
            on_stage = other.on_stage
            if tcfg.variants:
                on_stage = _per_variant(other, tcfg).on_stage or on_stage
            self.by_stage[stage] = (*self.by_stage[stage], (on_stage, tcfg))


def _per_variant(spec: TriggerSpec[Any], tcfg: TriggerConfig) -> TriggerSpec[Any]:
    """``spec`` with hooks that run under the customer's variant config (``core.variants``).

    Only triggers with variants get these wrappers: the others keep their hooks as they are.
    """
    pick = picker(spec.name, tcfg)
    on_event, on_timer, on_stage, on_merge = (
        spec.on_event,
        spec.on_timer,
        spec.on_stage,
        spec.on_merge,
    )
    hooks: dict[str, Any] = {}
    if on_event is not None:

        def event(ctx: Ctx, ev: Event, cfg: Any, late: bool) -> None:
            on_event(ctx, ev, pick(ctx.state), late)

        hooks["on_event"] = event
    if on_timer is not None:

        def timer(ctx: Ctx, kind: str, due: int, cfg: Any) -> None:
            on_timer(ctx, kind, due, pick(ctx.state))

        hooks["on_timer"] = timer
    if on_stage is not None:

        def stage(ctx: Ctx, change: StageChange, cfg: Any) -> None:
            on_stage(ctx, change, pick(ctx.state))

        hooks["on_stage"] = stage
    if on_merge is not None:

        def merge(ctx: Ctx, m: Merge, cfg: Any) -> None:
            on_merge(ctx, m, pick(ctx.state))

        hooks["on_merge"] = merge
    on_profile = spec.on_profile
    if on_profile is not None:

        def profile(ctx: Ctx, cfg: Any) -> None:
            on_profile(ctx, pick(ctx.state))

        hooks["on_profile"] = profile
    return replace(spec, **hooks)


_BOUND: dict[int, Hooks] = {}  # by id(config); each entry keeps its config alive


def bound(cfg: Config) -> Hooks:
    """The hooks for ``cfg``, bound on first use."""
    hooks = _BOUND.get(id(cfg))
    if hooks is None or hooks.cfg is not cfg:
        if len(_BOUND) >= 32:  # live config changes are rare; tests make many
            _BOUND.clear()
        hooks = _BOUND[id(cfg)] = Hooks(cfg)
    return hooks
