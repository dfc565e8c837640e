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
win_back trigger's settings, if it is enabled) when they go at_risk.
"""

from __future__ import annotations

from core.config import ChurnAlertConfig, WinBackConfig
from core.context import Ctx
from core.durations import DAY, HOUR, MINUTE, iso
from core.facts import COUNTER_OF, activity_pair
from core.model import Event, StageChange
from core.triggers import win_back

NAME = "churn_alert"
EVENTS = frozenset(COUNTER_OF)
STAGES = frozenset({"at_risk"})
TIMER = "churn_alert"
TIMERS = frozenset({TIMER})
_CHECKED = "churn_alert.checked"
_CHECK_EVERY = HOUR


def on_stage(ctx: Ctx, change: StageChange, cfg: ChurnAlertConfig) -> None:
    state = ctx.state
    days = max(0, change.at - state.last_active) // DAY
    why = f"no activity for {days} days since {iso(state.last_active)}: {change.from_stage} -> at_risk"
    _alert(ctx, cfg, ("at_risk", change.at), why, change.at, days)
    if cfg.win_back_offer:
        wcfg = ctx.cfg.triggers.get(win_back.NAME)
        if isinstance(wcfg, WinBackConfig) and wcfg.enabled:
            win_back.offer(ctx, change, wcfg)


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
