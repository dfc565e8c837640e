"""Audiences, tags and lead scores at work: compiled once per config, applied per step.

What a config asks for decides what runs (``bound``); with none of it, nothing here
runs per event:

- ``audiences:`` named expressions; a trigger's ``audience:`` (a name or an expression) is
  checked in ``Ctx.decide``, the one place every decision is made: a customer outside the
  audience gets no decision at all (as a trigger skipping a customer, not a status: the
  customer was never a candidate, so they are in neither group of the uplift measure).
- ``tags:`` rules, before the triggers of each event: a tag is set when its ``set``
  expression holds and stays (sticky) until its ``clear`` expression holds (while both
  hold, it is not set again).
- ``scores.lead.points``: behaviour points on each matching event, before the triggers;
  crossing ``mql`` qualifies the lead once (``lead_qualified`` decides); falling below
  ``requalify_below`` (seen at a later scoring event) lets it qualify again.
- ``segment_entered`` / ``segment_exited`` with ``audiences:`` to watch: after each step
  (event or timer) the watched audiences are evaluated and compared with the last
  membership kept in ``CustomerState.segments``. Time alone moves some (``days_since_*``),
  so while a customer is in a watched audience a ``segments`` timer re-checks them every
  ``recheck``: leaving by time alone is seen within ``recheck``. Entering by time alone
  (``days_since_active > 14``) is seen at the customer's next event or timer; a
  re-check of every customer would cost a timer per customer per ``recheck`` (measured:
  8x slower replay); watch the complement's exit instead ("active key accounts").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import scores
from core.audience_expr import Env, ExprError, Getter, Predicate, compile_expr
from core.config import Config, TriggerConfig
from core.model import CustomerState, Event, SegmentChange

if TYPE_CHECKING:
    from core.context import Ctx

TIMER = "segments"
EventStep = Callable[["Ctx", Event], None]  # runs before an event's triggers
AfterStep = Callable[["Ctx", str], None]  # runs after a step; the str names its cause
ENTERED, EXITED, LEAD = "segment_entered", "segment_exited", "lead_qualified"


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem with an expression or a reference, for ``core.config_file`` to report."""

    key: str  # dotted, as in the file
    line: int  # 0: unknown
    message: str


@dataclass(slots=True)
class Compiled:
    """Everything of a config's audiences, tags and scores, compiled."""

    audiences: dict[str, Predicate] = field(default_factory=dict)
    tags: list[tuple[str, Predicate, Predicate | None]] = field(default_factory=list)
    points: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # by event type
    fit: list[tuple[Predicate, float]] = field(default_factory=list)
    lead: Getter | None = None
    gates: dict[str, Predicate] = field(default_factory=dict)  # by audience text
    watched: list[tuple[str, Predicate]] = field(default_factory=list)
    watched_names: frozenset[str] = frozenset()
    entered: frozenset[str] = frozenset()
    exited: frozenset[str] = frozenset()
    recheck: int = 0
    issues: list[Issue] = field(default_factory=list)
    cfg: Config | None = None

    @property
    def per_event(self) -> bool:
        return bool(self.tags or self.points)

    # --- the gate ------------------------------------------------------------------------
    def admits(self, audience: str, state: CustomerState, now: int) -> bool:
        gate = self.gates.get(audience)
        if gate is None:  # a config made in code, not read from a file: compile it now
            gate = self.gates[audience] = compile_expr(audience, self._env())
        return gate(state, now)

    def _env(self) -> Env:
        cfg = self.cfg or Config()
        return Env(cfg.scores, self.audiences, self.lead)

    # --- per event, before the triggers --------------------------------------------------
    def before(self, ctx: Ctx, ev: Event) -> None:
        if self.points:
            rules = self.points.get(ev.type)
            if rules is not None:
                self._score(ctx, ev, rules)
        if self.tags:
            self._tag(ctx.state, ctx.now)

    def _tag(self, state: CustomerState, now: int) -> None:
        tags = state.tags
        for name, set_when, clear_when in self.tags:
            if name in tags:
                if clear_when is not None and clear_when(state, now):
                    tags.remove(name)
            elif set_when(state, now) and (clear_when is None or not clear_when(state, now)):
                tags.append(name)  # when both hold, clear wins: no flapping

    def _score(self, ctx: Ctx, ev: Event, rules: list[tuple[str, float]]) -> None:
        url = ev.url or ""
        points = 0.0
        for part, value in rules:
            if not part or part in url:
                points += value
        if not points:
            return
        cfg = self.cfg
        assert cfg is not None and self.lead is not None
        lead_cfg = cfg.scores.lead
        state = ctx.state
        lead = state.lead
        if lead and lead[scores.LEAD_QUALIFIED]:
            at = max(ev.ts, lead[scores.LEAD_AT])
            cooled = self.lead(state, at)
            if cooled < lead_cfg.requalify_below:
                lead[scores.LEAD_QUALIFIED] = 0  # gone cold: may qualify again
                ctx.segment_changes.append(
                    SegmentChange(
                        state.customer_id, "lead", "mql", "cooled", ev.ts, ev.event_id, cooled
                    )
                )
        scores.add_points(state, points, ev.ts, lead_cfg.half_life)
        lead = state.lead
        at = lead[scores.LEAD_AT]
        score = self.lead(state, at)
        if lead[scores.LEAD_QUALIFIED] or score < lead_cfg.mql:
            return
        lead[scores.LEAD_QUALIFIED] = 1
        ctx.segment_changes.append(
            SegmentChange(state.customer_id, "lead", "mql", "qualified", ev.ts, ev.event_id, score)
        )
        nth = lead[scores.LEAD_COUNT]
        lead[scores.LEAD_COUNT] = nth + 1
        tcfg = cfg.triggers.get(LEAD)
        if tcfg is not None and tcfg.enabled:
            _qualified(ctx, tcfg, state, score, lead_cfg.mql, nth, ev)

    # --- after each step -------------------------------------------------------------------
    def after(self, ctx: Ctx, cause: str) -> None:
        """Compare the watched audiences with the membership kept in ``state.segments``.

        ``segments`` holds each watched audience the customer was last seen in by name,
        and each they were last seen outside as ``!name``. An audience with neither is
        new to the customer (it was just added to a watch list, or the state predates
        it): a customer seen before is then only recorded, so switching a segment
        trigger on does not fire for everyone already inside ("turning a trigger on does
        not fire on history"); a customer on their first event enters normally.
        """
        state, now = ctx.state, ctx.now
        known = state.segments
        marks = [name if holds(state, now) else "!" + name for name, holds in self.watched]
        if marks == known:
            inside = bool(marks) and any(m[0] != "!" for m in marks)
        else:
            event_id = None if "@" in cause else cause
            changes = ctx.segment_changes
            customer_id = state.customer_id
            first_step = state.first_seen == state.max_ts  # their first event (or events at once)
            inside = False
            for mark in marks:
                if mark[0] == "!":
                    continue
                inside = True
                if mark in known:
                    continue
                changes.append(
                    SegmentChange(customer_id, "audience", mark, "entered", now, event_id)
                )
                if mark in self.entered and ("!" + mark in known or first_step):
                    _segment(ctx, ENTERED, mark, cause)
            for mark in known:
                if mark[0] != "!" and mark in self.watched_names and "!" + mark in marks:
                    changes.append(
                        SegmentChange(customer_id, "audience", mark, "exited", now, event_id)
                    )
                    if mark in self.exited:
                        _segment(ctx, EXITED, mark, cause)
            state.segments = marks
        if inside and self.recheck and TIMER not in state.timers:
            ctx.set_timer(TIMER, now + self.recheck)

    def lead_score(self, state: CustomerState, now: int) -> float | None:
        return None if self.lead is None else round(self.lead(state, now), 2)


def on_timer(ctx: Ctx, kind: str, due: int, compiled: Compiled) -> None:
    """The re-check timer: the engine evaluates the watched audiences after every timer."""


def _qualified(
    ctx: Ctx,
    tcfg: TriggerConfig,
    state: CustomerState,
    score: float,
    mql: float,
    nth: int,
    ev: Event,
) -> None:
    territory, owner = route(state, tcfg, nth)
    ctx.decide(
        LEAD,
        tcfg,
        ("mql", nth),
        reason=f"lead score {score:.1f} reached {mql:g} on {ev.type} (event {ev.event_id})",
        payload={
            "score": round(score, 1),
            "owner": owner,
            "territory": territory,
            "mql": mql,
            "qualification": nth + 1,
        },
        sources=(ev.event_id,),
        cause_ts=ev.ts,
    )


def route(state: CustomerState, tcfg: Any, nth: int) -> tuple[str, str]:
    """(territory, owner) of a lead's ``nth`` qualification (see ``scores.owner``)."""
    territory = ""
    pool: tuple[str, ...] = tcfg.owners
    attribute = tcfg.territory_attribute
    if attribute and state.profile is not None:
        value = state.profile.attributes.get(attribute)
        if isinstance(value, str):
            members = tuple(
                entry.split(":", 1)[1]
                for entry in tcfg.territories
                if entry.split(":", 1)[0].lower() == value.lower()
            )
            if members:
                territory, pool = value, members
    return territory, scores.owner(state.customer_id, nth, pool)


def _segment(ctx: Ctx, trigger: str, audience: str, cause: str) -> None:
    tcfg = ctx.cfg.triggers.get(trigger)
    if tcfg is None or not tcfg.enabled:
        return
    verb = "entered" if trigger == ENTERED else "left"
    ctx.decide(
        trigger,
        tcfg,
        (audience, cause),
        reason=f"{verb} audience {audience}",
        payload={"audience": audience},
        sources=() if "@" in cause else (cause,),
        cause_ts=ctx.now,
    )


# --- compiling a config ----------------------------------------------------------------


def compile_config(cfg: Config) -> Compiled:
    """Compile every expression of ``cfg``; problems go to ``issues``, not exceptions."""
    out = Compiled(cfg=cfg)
    issues = out.issues

    def compiled(text: str, env: Env, key: str, line: int) -> Predicate | None:
        try:
            return compile_expr(text, env)
        except ExprError as exc:
            issues.append(Issue(key, line, f"{exc.message} (column {exc.column} of {text!r})"))
            return None

    lead_cfg = cfg.scores.lead
    if lead_cfg.points:
        fit_env = Env(cfg.scores, no_lead="a fit rule cannot use the score it makes")
        for i, fit in enumerate(lead_cfg.fit):
            holds = compiled(fit.when, fit_env, f"scores.lead.fit[{i}].when", fit.line)
            if holds is not None:
                out.fit.append((holds, fit.points))
        for point in lead_cfg.points:
            out.points.setdefault(point.on, []).append((point.url, point.points))
        out.lead = _lead_getter(lead_cfg.half_life, out.fit)
    elif lead_cfg.fit:
        issues.append(Issue("scores.lead.fit", lead_cfg.fit[0].line, "fit points need points"))
    defined = [a.name for a in cfg.audiences]
    for i, audience in enumerate(cfg.audiences):
        env = Env(cfg.scores, dict(out.audiences), out.lead, later=frozenset(defined[i:]))
        holds = compiled(audience.expr, env, f"audiences.{audience.name}", audience.line)
        if holds is not None:
            out.audiences[audience.name] = holds
    env = Env(cfg.scores, out.audiences, out.lead)
    for rule in cfg.tags:
        set_when = compiled(rule.set, env, f"tags.{rule.name}.set", rule.line)
        clear_when = (
            compiled(rule.clear, env, f"tags.{rule.name}.clear", rule.line) if rule.clear else None
        )
        if set_when is None or (rule.clear and clear_when is None):
            continue
        out.tags.append((rule.name, set_when, clear_when if rule.clear else None))
    for name, trigger_cfg in cfg.triggers.items():
        if trigger_cfg.audience:
            gate = compiled(trigger_cfg.audience, env, f"triggers.{name}.audience", 0)
            if gate is not None:
                out.gates[trigger_cfg.audience] = gate
    watched: list[str] = []
    for trigger in (ENTERED, EXITED):
        tcfg = cfg.triggers.get(trigger)
        names: tuple[str, ...] = getattr(tcfg, "audiences", ())
        for name in names:
            if name not in defined:
                known = ", ".join(a.name for a in cfg.audiences) or "none defined"
                issues.append(
                    Issue(f"triggers.{trigger}.audiences", 0, f"no audience {name!r} ({known})")
                )
        if tcfg is None or not tcfg.enabled or not names:
            continue
        watched.extend(n for n in names if n not in watched and n in out.audiences)
        recheck: int = getattr(tcfg, "recheck", 0)
        if recheck and (not out.recheck or recheck < out.recheck):
            out.recheck = recheck
        if trigger == ENTERED:
            out.entered = frozenset(names)
        else:
            out.exited = frozenset(names)
    out.watched = [(name, out.audiences[name]) for name in watched]
    out.watched_names = frozenset(watched)
    lead_trigger = cfg.triggers.get(LEAD)
    for entry in getattr(lead_trigger, "territories", ()):
        region, _, owner = entry.partition(":")
        if not region or not owner:
            issues.append(
                Issue(
                    f"triggers.{LEAD}.territories",
                    0,
                    f"expected 'territory:owner' like 'emea:alice', got {entry!r}",
                )
            )
    return out


def _lead_getter(half_life: int, fit: list[tuple[Predicate, float]]) -> Getter:
    def lead(state: CustomerState, now: int) -> float:
        score = scores.lead_behaviour(state, now, half_life)
        for holds, points in fit:
            if holds(state, now):
                score += points
        return score

    return lead


_BOUND: dict[int, Compiled] = {}  # by id(config); each entry keeps its config alive


def bound(cfg: Config) -> Compiled:
    """The compiled audiences, tags and scores of ``cfg``, compiled on first use."""
    compiled = _BOUND.get(id(cfg))
    if compiled is None or compiled.cfg is not cfg:
        if len(_BOUND) >= 32:
            _BOUND.clear()
        compiled = compile_config(cfg)
        if compiled.issues:  # a config read from a file was checked when read
            raise ValueError("; ".join(f"{i.key}: {i.message}" for i in compiled.issues))
        _BOUND[id(cfg)] = compiled
    return compiled
