"""Birthday: an offer on the customer's birthday at ``send_at`` local time in their zone.

The birth date is the profile attribute ``attribute`` (``1990-02-29``, or ``--02-29`` /
``02-29`` without a year). One timer per customer, armed when the profile arrives or
changes (and, for profiles that came while the trigger was off, on the customer's next
session start or app open), due at the next birthday's ``send_at`` in the profile's
``timezone`` (else ``policy.default_timezone``). When it fires it decides once for that
year (the mark holds the last year sent) and re-arms for the next year: no daily scan.

29 February in a non-leap year: 28 February (``leap_day: feb28``) or 1 March
(``leap_day: mar1``). A local time that does not exist that day (a DST gap) is read
with the offset before the change, so ``02:30`` on a spring-forward night is sent at
03:30; a repeated time (autumn) is sent at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.config import TriggerConfig, setting
from core.context import Ctx
from core.model import Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "birthday"
TIMER = "birthday"
_YEAR = "birthday.year"  # the last year a birthday decision was made
_DATE = re.compile(r"(?:(\d{4})-|--)?(\d{2})-(\d{2})")


@dataclass(frozen=True, slots=True)
class BirthdayConfig(TriggerConfig):
    enabled: bool = False  # off until configured
    send_at: str = "10:00"  # local time of day, HH:MM
    leap_day: str = setting("feb28", choices=("feb28", "mar1"))  # 29 Feb in other years
    attribute: str = "birth_date"  # the profile attribute holding the date
    channel: str = "email"
    template: str = "Happy birthday, {first_name}! A gift awaits you."


def birth_month_day(value: object) -> tuple[int, int] | None:
    """(month, day) of a birth date as profiles give it, or None when unusable."""
    if not isinstance(value, str):
        return None
    m = _DATE.fullmatch(value.strip())
    if m is None:
        return None
    month, day = int(m.group(2)), int(m.group(3))
    try:
        date(2000, month, day)  # a leap year: 02-29 is valid
    except ValueError:
        return None
    return month, day


def on_day(year: int, month: int, day: int, leap_day: str) -> date:
    """The date a birthday falls on in ``year`` (29 February per ``leap_day``)."""
    if month == 2 and day == 29:
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 3, 1) if leap_day == "mar1" else date(year, 2, 28)
    return date(year, month, day)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def next_birthday(
    month: int, day: int, zone: ZoneInfo, send_at: str, leap_day: str, after: int, done: int
) -> tuple[int, int]:
    """``(due epoch ms, year)`` of the first birthday send time after ``after`` in a year
    later than ``done`` (the last year sent)."""
    hours, minutes = (int(x) for x in send_at.split(":"))
    year = max(datetime.fromtimestamp(after / 1000, zone).year - 1, done + 1)
    while True:
        d = on_day(year, month, day, leap_day)
        local = datetime(d.year, d.month, d.day, hours, minutes, tzinfo=zone)  # fold=0
        due = int(local.timestamp() * 1000)
        if due > after:
            return due, year
        year += 1


def _target(ctx: Ctx, cfg: BirthdayConfig, after: int) -> tuple[int, int] | None:
    profile = ctx.state.profile
    if profile is None:
        return None
    md = birth_month_day(profile.attributes.get(cfg.attribute))
    if md is None:
        return None
    zone = _zone(profile.timezone or "") or _zone(ctx.cfg.policy.default_timezone)
    if zone is None:
        return None
    done = ctx.state.marks.get(_YEAR, 0)
    return next_birthday(*md, zone, cfg.send_at, cfg.leap_day, after, done)


def _arm(ctx: Ctx, cfg: BirthdayConfig) -> None:
    target = _target(ctx, cfg, ctx.now)
    if target is None:
        ctx.cancel_timer(TIMER)
    elif ctx.state.timers.get(TIMER) != target[0]:
        ctx.set_timer(TIMER, target[0])


def on_profile(ctx: Ctx, cfg: BirthdayConfig) -> None:
    _arm(ctx, cfg)


def on_event(ctx: Ctx, ev: Event, cfg: BirthdayConfig, late: bool) -> None:
    if TIMER not in ctx.state.timers and ctx.state.profile is not None:
        _arm(ctx, cfg)  # a profile joined while the trigger was off


def on_timer(ctx: Ctx, kind: str, due: int, cfg: BirthdayConfig) -> None:
    target = _target(ctx, cfg, due - 1)
    if target is not None and target[0] == due:  # still this customer's birthday time
        year = target[1]
        ctx.state.marks[_YEAR] = year
        ctx.decide(
            NAME,
            cfg,
            year,
            reason=f"birthday in {year}, {cfg.send_at} local time",
            payload={"year": year},
            sources=(),
            cause_ts=due,
        )
    _arm(ctx, cfg)


SPEC = TriggerSpec(
    name=NAME,
    config=BirthdayConfig,
    template_vars=frozenset({"year"}),
    events=frozenset({"session_start", "app_open"}),
    on_event=on_event,
    timers=frozenset({TIMER}),
    on_timer=on_timer,
    on_profile=on_profile,
    doc=TriggerDoc(
        fires_when="the customer's birthday (profile `attribute`) at `send_at` in their time zone",
        key_parameters=("send_at", "leap_day", "attribute"),
        exits="once a year, re-armed by its own timer; 29 Feb per `leap_day`",
    ),
)
