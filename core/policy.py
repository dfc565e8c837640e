"""Contact policy the core can decide alone, from the customer's state and the clock.

Order matters for measuring uplift: consent and cooldown first (a customer who
could not be messaged is in neither group), then the holdout split, then shadow
mode, then quiet hours. Frequency caps span workers and live in Redis: the
dispatcher applies them right before sending.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.config import Config, TriggerConfig
from core.ids import unit_share
from core.model import CustomerState, Status

CUSTOMER_CHANNELS = frozenset({"push", "email", "sms"})  # internal alert channels need no consent


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def has_consent(state: CustomerState, channel: str) -> bool:
    if channel not in CUSTOMER_CHANNELS:
        return True
    if "all" in state.optouts or channel in state.optouts:
        return False
    profile = state.profile
    return profile is None or profile.consent.get(channel, True)


def in_holdout(customer_id: str, trigger: str, share: float) -> bool:
    return share > 0 and unit_share("holdout", trigger, customer_id) < share


@lru_cache(maxsize=64)
def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_hours_end(state: CustomerState, now: int, cfg: Config) -> int | None:
    """If ``now`` is inside the customer's local quiet hours, when they end (epoch ms)."""
    quiet = cfg.policy.quiet_hours
    if not quiet.enabled:
        return None
    tz_name = (state.profile and state.profile.timezone) or cfg.policy.default_timezone
    minute = now // 60_000
    key = (tz_name, quiet.start, quiet.end)
    run = _RUNS.get(key)  # (first, until, answer); a plain tuple indexes fastest
    if run is None or not run[0] <= minute < run[1]:
        if len(_RUNS) >= 4096:  # time zones come from profiles: bound what they can fill
            _RUNS.clear()
        run = _RUNS[key] = _quiet_run(tz_name, quiet.start, quiet.end, minute)
    return run[2]


# The answer is the same for every minute until the next edge of quiet hours: per zone
# and setting, the run of minutes around the last one asked (decisions ask in time
# order, so a zone converts times about twice a day instead of once a minute).
_Run = tuple[int, int, int | None]  # (first, until, answer): minutes [first, until) give answer
_RUNS: dict[tuple[str, str, str], _Run] = {}


def _quiet_run(tz_name: str, start_hhmm: str, end_hhmm: str, minute: int) -> _Run:
    """:func:`quiet_end_at` for ``minute`` and the run of minutes after it with the same answer."""
    answer = quiet_end_at(tz_name, start_hhmm, end_hhmm, minute)
    zone = _zone(tz_name)
    local = datetime.fromtimestamp(minute * 60, tz=zone)
    if answer is not None:  # inside: the same end until it comes
        until = answer // 60_000
    else:  # outside until quiet hours next start
        start = _minutes(start_hhmm)
        begin = local.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)
        if begin <= local:
            begin += timedelta(days=1)
        until = int(begin.astimezone(UTC).timestamp()) // 60
    # Local time only maps linearly onto the run without a UTC-offset change inside it.
    later = datetime.fromtimestamp(until * 60, tz=zone)
    if until <= minute or local.utcoffset() != later.utcoffset():
        until = minute + 1
    return minute, until, answer


def quiet_end_at(tz_name: str, start_hhmm: str, end_hhmm: str, epoch_minute: int) -> int | None:
    """The definition: if ``epoch_minute`` is inside quiet hours in ``tz_name``, their end (ms)."""
    start, end = _minutes(start_hhmm), _minutes(end_hhmm)
    local = datetime.fromtimestamp(epoch_minute * 60, tz=_zone(tz_name))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    end_local = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if end_local <= local:
        end_local += timedelta(days=1)
    return int(end_local.astimezone(UTC).timestamp() * 1000)


def status_for(
    state: CustomerState, trigger: str, tcfg: TriggerConfig, channel: str, now: int, cfg: Config
) -> tuple[Status, str]:
    """The decision's status and, when not ``send``, why."""
    if not has_consent(state, channel):
        return "suppressed_consent", f"no consent for {channel}"
    last = state.marks.get(trigger)
    if tcfg.cooldown and last is not None and now - last < tcfg.cooldown:
        return "suppressed_cooldown", f"{trigger} decided {(now - last) // 1000}s ago"
    if in_holdout(state.customer_id, trigger, tcfg.holdout):
        return "held_out", "control group"
    if tcfg.shadow:
        return "shadow", "shadow mode"
    if channel in CUSTOMER_CHANNELS and quiet_hours_end(state, now, cfg) is not None:
        return "deferred_quiet_hours", "quiet hours"
    return "send", ""
