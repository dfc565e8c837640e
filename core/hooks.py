"""Which hooks run under one config, bound once per config from the registered specs.

Configs are immutable and replaced whole when they change, so the per-event path
neither looks up trigger configs nor skips disabled triggers one by one: it reads
one dict entry and calls what is there.
"""

from __future__ import annotations

from typing import Any

from core import journey, points, recommend
from core.config import Config, TriggerConfig
from core.trigger import EventHook, MergeHook, ProfileHook, StageHook, TimerHook
from core.triggers import SPECS

# (hook, its trigger's config), in registration order
EventHooks = tuple[tuple[EventHook[Any], TriggerConfig], ...]
StageHooks = tuple[tuple[StageHook[Any], TriggerConfig], ...]
MergeHooks = tuple[tuple[MergeHook[Any], TriggerConfig], ...]
ProfileHooks = tuple[tuple[ProfileHook[Any], TriggerConfig], ...]


class Hooks:
    """The hooks of the enabled triggers, by event type, timer kind and stage."""

    __slots__ = ("by_event", "by_stage", "by_timer", "cfg", "on_merge", "on_profile")

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
            self.by_stage[stage] = (*self.by_stage[stage], (other.on_stage, tcfg))


_BOUND: dict[int, Hooks] = {}  # by id(config); each entry keeps its config alive


def bound(cfg: Config) -> Hooks:
    """The hooks for ``cfg``, bound on first use."""
    hooks = _BOUND.get(id(cfg))
    if hooks is None or hooks.cfg is not cfg:
        if len(_BOUND) >= 32:  # live config changes are rare; tests make many
            _BOUND.clear()
        hooks = _BOUND[id(cfg)] = Hooks(cfg)
    return hooks
