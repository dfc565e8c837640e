"""The trigger contract: everything a trigger is, as one typed declaration.

A trigger module defines its config type (a frozen dataclass subclassing
:class:`~core.config.TriggerConfig`), its hooks, and ``SPEC = TriggerSpec(...)``
naming them; one line in ``core/triggers/__init__.py`` registers it. The rest is
derived from the registered specs: the engine's hook tables (``core.hooks``), the
config file's schema and limits (``Config.triggers``, ``core.config_file``), the
template variables (``core.templates``) and the README's trigger table
(``core.trigger_table``).

Hooks are all optional; each listens to what the spec names next to it and runs
only while the trigger is enabled, with the trigger's own config:

- ``on_event(ctx, ev, cfg, late)``: events of the types in ``events``;
- ``on_timer(ctx, kind, due, cfg)``: its own deadlines, of the kinds in ``timers``
  (unique across triggers; a disabled trigger's timers are dropped when due);
- ``on_stage(ctx, change, cfg)``: journey stage changes to a stage in ``stages``;
- ``on_merge(ctx, merge, cfg)``: an anonymous visitor's history was just folded
  into the customer (``core.identity``); ``merge`` says what was adopted;
- ``on_profile(ctx, cfg)``: the customer's profile just arrived, changed or was
  forgotten (``ctx.state.profile``; ``birthday`` arms its timer here).

The type checker sees every hook against its trigger's config type: a hook taking
another trigger's config, or the wrong arguments, is an error in ``make check``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Generic, TypeVar

from core.config import TriggerConfig
from core.context import Ctx
from core.model import STAGES, TOPIC_TYPES, CustomerState, Event, StageChange

C = TypeVar("C", bound=TriggerConfig)

EVENT_TYPES = frozenset().union(*TOPIC_TYPES.values())
RESERVED_TIMERS = frozenset({"journey", "segments"})  # core.journey's, core.segments' re-check


@dataclass(frozen=True, slots=True)
class Merge:
    """What folding an anonymous visitor's state into the customer did."""

    anonymous: CustomerState  # the visitor's state, as it came from its owner
    adopted_cart: bool  # the customer had no cart and took over the visitor's


EventHook = Callable[[Ctx, Event, C, bool], None]  # (ctx, ev, cfg, late)
TimerHook = Callable[[Ctx, str, int, C], None]  # (ctx, kind, due, cfg)
StageHook = Callable[[Ctx, StageChange, C], None]  # (ctx, change, cfg)
MergeHook = Callable[[Ctx, Merge, C], None]  # (ctx, merge, cfg)
ProfileHook = Callable[[Ctx, C], None]  # (ctx, cfg): the profile just changed (ctx.state.profile)


@dataclass(frozen=True, slots=True)
class Handoff(Generic[C]):
    """On a change to ``stage``, also run ``trigger``'s stage hook, under that trigger's
    own config and only while it is enabled, when ``when`` holds for this trigger's config.

    It runs right after this trigger's own stage hook. How ``churn_alert`` offers a
    ``win_back`` when a customer goes at_risk, without importing it.
    """

    stage: str
    trigger: str
    when: Callable[[C], bool]


@dataclass(frozen=True, slots=True)
class TriggerDoc:
    """The trigger's row in the README's table (``core.trigger_table``)."""

    fires_when: str
    key_parameters: tuple[str, ...]  # settings shown with their defaults
    exits: str = ""  # what cancels it, and the rules worth knowing


@dataclass(frozen=True, slots=True)
class TriggerSpec(Generic[C]):
    """One trigger: its name, config type, template variables, what it listens to, its hooks."""

    name: str  # the key under ``triggers:`` in the config file and on every decision
    config: type[C]
    template_vars: frozenset[str]  # payload keys a template may use (besides the common ones)
    doc: TriggerDoc
    events: frozenset[str] = frozenset()
    on_event: EventHook[C] | None = None
    timers: frozenset[str] = frozenset()
    on_timer: TimerHook[C] | None = None
    stages: frozenset[str] = frozenset()
    on_stage: StageHook[C] | None = None
    on_merge: MergeHook[C] | None = None
    handoffs: tuple[Handoff[C], ...] = ()
    on_profile: ProfileHook[C] | None = None

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError(f"trigger {self.name!r}: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out = []
        if not self.name.isidentifier():
            out.append("its name must be a word of letters, digits and _")
        cls = self.config
        if not (isinstance(cls, type) and issubclass(cls, TriggerConfig) and is_dataclass(cls)):
            out.append("config must be a dataclass subclassing core.config.TriggerConfig")
        elif not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            out.append(f"{cls.__name__} must be frozen: configs are shared and replaced whole")
        else:
            names = {f.name for f in fields(cls)}
            missing = [p for p in self.doc.key_parameters if p not in names]
            if missing:
                out.append(f"doc.key_parameters not settings of {cls.__name__}: {missing}")
        for what, listened, hook in (
            ("events", self.events, self.on_event),
            ("timers", self.timers, self.on_timer),
            ("stages", self.stages, self.on_stage),
        ):
            if bool(listened) != (hook is not None):
                out.append(f"{what} and on_{what[:-1]} go together")
        if self.events - EVENT_TYPES:
            out.append(f"unknown event types {sorted(self.events - EVENT_TYPES)}")
        if self.stages - set(STAGES):
            out.append(f"unknown stages {sorted(self.stages - set(STAGES))}")
        if self.timers & RESERVED_TIMERS:
            out.append(f"timer kinds {sorted(RESERVED_TIMERS)} belong to the core")
        for handoff in self.handoffs:
            if handoff.stage not in self.stages:
                out.append(f"a handoff on {handoff.stage!r}, a stage it does not listen to")
        return out
