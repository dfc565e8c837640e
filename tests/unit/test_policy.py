"""Quiet hours: the cached runs give exactly what the definition gives, DST included."""

from __future__ import annotations

import random

import pytest

from core import policy
from core.config import Config, PolicyConfig, QuietHours
from core.model import CustomerState, Profile

MINUTES = 60_000
# 2026: Berlin and New York change clocks in March and October/November, Lord Howe by
# 30 minutes in April and October, Kolkata never.
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
SETTINGS = [("21:00", "08:00"), ("08:00", "21:00"), ("01:30", "02:30"), ("02:30", "01:30")]
T0 = 1_767_225_600_000 // MINUTES  # 2026-01-01T00:00Z, in minutes


def _minutes_across_transitions() -> list[int]:
    """Every 11th minute of 2026's DST weeks, plus a random sample of the rest of the year."""
    rng = random.Random(3)
    weeks = [(3, 26), (4, 1), (10, 1), (10, 22), (10, 29)]  # (month, day) starts, ~a week each
    out = []
    for month, day in weeks:
        start = T0 + ((month - 1) * 30 + day - 3) * 1440
        out.extend(range(start, start + 9 * 1440, 11))
    out.extend(rng.randrange(T0, T0 + 365 * 1440) for _ in range(2000))
    return sorted(out)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("start", "end"), SETTINGS)
def test_quiet_hours_end_equals_the_definition_in_time_order_and_shuffled(
    zone: str, start: str, end: str
) -> None:
    cfg = Config(policy=PolicyConfig(quiet_hours=QuietHours(start=start, end=end)))
    state = CustomerState("c1", profile=Profile(timezone=zone))
    minutes = _minutes_across_transitions()
    shuffled = minutes[:]
    random.Random(5).shuffle(shuffled)
    for order in (minutes, shuffled):
        policy._RUNS.clear()
        for minute in order:
            now = minute * MINUTES + 17_000  # any second of the minute
            expected = policy.quiet_end_at(zone, start, end, minute)
            assert policy.quiet_hours_end(state, now, cfg) == expected, (zone, minute)


def test_quiet_hours_off_and_unknown_zones() -> None:
    off = Config(policy=PolicyConfig(quiet_hours=QuietHours(enabled=False)))
    state = CustomerState("c1", profile=Profile(timezone="Mars/Olympus_Mons"))
    night = (T0 + 23 * 60) * MINUTES  # 23:00 UTC
    assert policy.quiet_hours_end(state, night, off) is None
    assert policy.quiet_hours_end(state, night, Config()) == (T0 + 32 * 60) * MINUTES  # UTC 08:00
