"""Churn alert: tell the customer-success team when a customer slips away.

Two causes:
- a purchaser goes ``at_risk`` (the journey's inactivity timer; a stage hook);
- an engagement drop: activity over ``short_window`` at a rate below
  ``drop_ratio`` times the rate over ``long_window``, with at least
  ``min_long_activity`` events in the long window. Checked on activity at
  most once an hour (two window sums), and on a timer ``short_window`` after
  the last activity (when the short window has emptied), armed only for
  customers with enough history. A customer inside the cooldown is not checked.
With ``win_back_offer`` the customer also gets a ``win_back`` offer (under the
win_back trigger's settings, if it is enabled) when they go at_risk: a handoff in
the declaration below, run right after this trigger's own stage hook.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import SHARE_UP_TO_ONE, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, HOUR, MINUTE, iso
from core.facts import COUNTER_OF, activity_pair
from core.model import Event, StageChange
from core.trigger import Handoff, TriggerDoc, TriggerSpec

NAME = "churn_alert"
TIMER = "churn_alert"
_CHECKED = "churn_alert.checked"
_CHECK_EVERY = HOUR


@dataclass(frozen=True, slots=True)
class ChurnAlertConfig(TriggerConfig):
    channel: str = "slack"  # the customer-success team's channel
    short_window: int = duration(7 * DAY)
    long_window: int = duration(30 * DAY)
    # short-window rate below this share of the long-window rate
    drop_ratio: float = setting(0.25, limit=SHARE_UP_TO_ONE)
    min_long_activity: int = 8  # engagement drop needs this much history to mean anything
    win_back_offer: bool = False  # also send the customer a win_back offer
    cooldown: int = duration(30 * DAY)
    template: str = "Customer {customer_id} is at risk: {reason}"


def on_stage(ctx: Ctx, change: StageChange, cfg: ChurnAlertConfig) -> None:
    state = ctx.state
    days = max(0, change.at - state.last_active) // DAY
    why = f"no activity for {days} days since {iso(state.last_active)}: {change.from_stage} -> at_risk"
    _alert(ctx, cfg, ("at_risk", change.at), why, change.at, days)


def _offers_win_back(cfg: ChurnAlertConfig) -> bool:
    return cfg.win_back_offer


def on_event(ctx: Ctx, ev: Event, cfg: ChurnAlertConfig, late: bool) -> None:
    marks = ctx.state.marks
    if late or ev.ts - marks.get(_CHECKED, 0) < _CHECK_EVERY:
        return
    marks[_CHECKED] = ev.ts
    _check(ctx, cfg, ctx.state.max_ts, ev.event_id)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: ChurnAlertConfig) -> None:
    deadline = _silence(ctx, cfg)
    if deadline > due:  # active since: wait on
        ctx.set_timer(TIMER, deadline)
        return
    _check(ctx, cfg, due, None)


def _silence(ctx: Ctx, cfg: ChurnAlertConfig) -> int:
    """When the short window holds no activity (the last activity's minute bucket included)."""
    return ctx.state.last_active + cfg.short_window + MINUTE


def _check(ctx: Ctx, cfg: ChurnAlertConfig, now: int, event_id: str | None) -> None:
    state = ctx.state
    last = state.marks.get(NAME)
    if cfg.cooldown and last is not None and ctx.now - last < cfg.cooldown:
        return
    short_n, long_n = activity_pair(state, now, cfg.short_window, cfg.long_window)
    if long_n < cfg.min_long_activity:
        return
    short_rate = short_n / cfg.short_window
    long_rate = long_n / cfg.long_window
    if short_rate >= cfg.drop_ratio * long_rate:
        silence = _silence(ctx, cfg)
        if silence > now and TIMER not in state.timers:  # enough history: watch for silence
            ctx.set_timer(TIMER, silence)
        return
    days = max(0, now - state.last_active) // DAY
    why = (
        f"engagement drop: {short_n} events in the last {cfg.short_window // DAY}d "
        f"({short_rate * DAY:.2f}/day) vs {long_n} in {cfg.long_window // DAY}d "
        f"({long_rate * DAY:.2f}/day), below {cfg.drop_ratio:g}x"
    )
    _alert(ctx, cfg, ("drop", event_id or now), why, now, days, (event_id,) if event_id else ())


def _alert(
    ctx: Ctx,
    cfg: ChurnAlertConfig,
    discriminator: object,
    why: str,
    cause_ts: int,
    days: int,
    sources: tuple[str, ...] = (),
) -> None:
    ctx.decide(
        NAME,
        cfg,
        discriminator,
        reason=why,
        payload={
            "reason": why,
            "stage": ctx.state.stage,
            "days_inactive": days,
            "last_active": ctx.state.last_active,
        },
        sources=sources,
        cause_ts=cause_ts,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=ChurnAlertConfig,
    template_vars=frozenset({"reason", "stage", "days_inactive", "last_active"}),
    events=frozenset(COUNTER_OF),
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    stages=frozenset({"at_risk"}),
    on_stage=on_stage,
    handoffs=(Handoff("at_risk", "win_back", _offers_win_back),),
    doc=TriggerDoc(
        fires_when="a purchaser goes `at_risk`, or activity over `short_window` falls below "
        "`drop_ratio` of its rate over `long_window`",
        key_parameters=(
            "short_window",
            "long_window",
            "drop_ratio",
            "min_long_activity",
            "win_back_offer",
            "cooldown",
        ),
        exits="to the customer-success team; with `win_back_offer` the customer also gets "
        "a `win_back` offer on at_risk",
    ),
)
