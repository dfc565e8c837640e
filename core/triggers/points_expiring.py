"""Points expiring: a reminder ``ahead`` before earned points lapse (``core.points``).

Needs ``membership.enabled``. One timer, at the reminder for the next lapse not yet
reminded of (a mark holds the last lapse reminded); when it fires the points are
counted again (a refund since may have taken them back), at least ``min_points``
get a reminder, and the timer re-arms for the following lapse.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import points
from core.config import AT_LEAST_ONE, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, iso
from core.model import Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "points_expiring"
TIMER = "points_expiring"
_DONE = "points_expiring.at"  # the lapse time last reminded of


@dataclass(frozen=True, slots=True)
class PointsExpiringConfig(TriggerConfig):
    enabled: bool = False  # needs membership: off until configured
    ahead: int = duration(14 * DAY)
    min_points: int = setting(1, limit=AT_LEAST_ONE)
    channel: str = "email"
    template: str = "{expiring} of your {points} points expire on {expires_at}"


def _next(ctx: Ctx, cfg: PointsExpiringConfig) -> tuple[int, int] | None:
    done = ctx.state.marks.get(_DONE, 0)
    for at, n in points.lapses(ctx.state.member, ctx.now, ctx.cfg.membership):
        if at > done and n >= cfg.min_points:
            return at, n
    return None


def _arm(ctx: Ctx, cfg: PointsExpiringConfig) -> None:
    nxt = _next(ctx, cfg)
    if nxt is None:
        ctx.cancel_timer(TIMER)
        return
    due = max(nxt[0] - cfg.ahead, ctx.now)
    if ctx.state.timers.get(TIMER) != due:
        ctx.set_timer(TIMER, due)


def on_event(ctx: Ctx, ev: Event, cfg: PointsExpiringConfig, late: bool) -> None:
    if ctx.cfg.membership.enabled:
        _arm(ctx, cfg)


def on_timer(ctx: Ctx, kind: str, due: int, cfg: PointsExpiringConfig) -> None:
    mcfg = ctx.cfg.membership
    if not mcfg.enabled:
        return
    nxt = _next(ctx, cfg)
    if nxt is not None and nxt[0] - cfg.ahead <= ctx.now:
        at, n = nxt
        ctx.state.marks[_DONE] = at
        ctx.decide(
            NAME,
            cfg,
            at,
            reason=f"{n} points lapse at {iso(at)}",
            payload={
                "expiring": n,
                "expires_at": at,
                "points": points.balance(ctx.state.member, ctx.now, mcfg),
            },
            sources=(),
            cause_ts=due,
        )
    _arm(ctx, cfg)


SPEC = TriggerSpec(
    name=NAME,
    config=PointsExpiringConfig,
    template_vars=frozenset({"expiring", "expires_at", "points"}),
    events=points.EARN_EVENTS | points.TAKE_BACK | {"review"},
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    doc=TriggerDoc(
        fires_when="`ahead` before earned points lapse (`membership.expiry` after the day "
        "they were earned)",
        key_parameters=("ahead", "min_points"),
        exits="needs `membership.enabled`; once per lapse date; re-counted when due",
    ),
)
