"""ISO-8601 ``ts`` strings take a fast path; it must give what the general path gives.

``reference`` is the decoder's string branch as it was before the fast path (two regular
expressions, ``fromisoformat``, ``timestamp()``): for every string here ``parse_ts``
returns the same milliseconds (float steps and their truncation included) or raises the
same error.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream.events import MAX_TS, MIN_TS, _Invalid, _iso_ms, parse_ts

_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_ISO_LOCAL = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
)


def reference(value: str) -> int | str:
    """Milliseconds, or the start of the error, as the decoder computed them before."""
    if _ISO_LOCAL.fullmatch(value):
        return "needs a UTC offset"
    try:
        if not _ISO.fullmatch(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return "is not an ISO-8601 time"
    try:
        ts = int(parsed.timestamp() * 1000)
    except (OverflowError, ValueError):
        return "is out of range"
    return ts if MIN_TS <= ts <= MAX_TS else "out of bounds"


def ours(value: str) -> int | str:
    try:
        return parse_ts(value)
    except _Invalid as bad:
        if "needs a UTC offset" in bad.error:
            return "needs a UTC offset"
        if "is not an ISO-8601 time" in bad.error:
            return "is not an ISO-8601 time"
        if "is out of range" in bad.error:
            return "is out of range"
        return "out of bounds"


def random_times(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ms = rng.randrange(MIN_TS - 10 * 86_400_000, MAX_TS + 10 * 86_400_000)
        if rng.random() < 0.2:
            ms -= ms % 1000  # whole seconds
        offset = timezone(timedelta(minutes=rng.randrange(-23 * 60, 23 * 60 + 1)))
        moment = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(offset)
        text = moment.isoformat(
            timespec=rng.choice(("minutes", "seconds", "milliseconds", "microseconds"))
        )
        if rng.random() < 0.3:
            text = text.replace("T", " ")
        if text.endswith("+00:00") and rng.random() < 0.5:
            text = text[:-6] + "Z"
        if rng.random() < 0.1 and "." in text:  # 1 to 9 fraction digits
            head, _, tail = text.partition(".")
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
            text = f"{head}.{digits}{tail[len(tail.rstrip('Z+-:0123456789')) :][-6:] if not tail.endswith('Z') else 'Z'}"
        out.append(text)
    return out


ODD = [
    "2026-02-30T12:00:00Z",  # no such day
    "2024-02-29T12:00:00Z",  # a leap day
    "2026-13-01T00:00:00Z",
    "2026-01-08T24:00:00Z",
    "2026-01-08T12:60:00Z",
    "2026-01-08T12:00:60Z",
    "2026-01-08T12:00:00+24:00",
    "2026-01-08T12:00:00+05:60",
    "2026-01-08T12:00:00-23:59",
    "0001-01-01T00:00:00+01:00",  # shifted before year 1
    "9999-12-31T23:59:59-01:00",  # shifted past 9999
    "1970-01-01T00:00:00Z",  # before 1971: out of bounds
    "2100-01-01T00:00:00Z",
    "2100-01-01T00:00:00.001Z",
    "2026-01-08T12:00:00z",  # lowercase z
    "2026-01-08t12:00:00Z",
    "2026-01-08T12:00:00",  # no offset
    "2026-01-08T12:00",
    "2026-01-08",
    "2026-01-08T12:00:00.Z",
    "2026-01-08T12:00:00.1234567890Z",  # ten fraction digits
    "2026-01-08T12:00:00+0100",
    "2026-01-08T12:00:00+01",
    "2026-01-08T12Z",
    "20260108T120000Z",
    "2026-W02-4T12:00:00Z",
    "\uff12\uff10\uff12\uff16-01-08T12:00:00Z",  # fullwidth digits
    "2026-01-08T12:00:00\u00a0Z",
    " 2026-01-08T12:00:00Z",
    "2026-01-08T12:00:00Z ",
    "2026-01-08T12:00:00.123+01:00",
    "2026-01-01T00:00:00.123Z",  # float steps: 1767225600.123 * 1000
    "2026-01-08T12:00:00.999999999Z",
    "",
    "\ud800",
]


@pytest.mark.parametrize("value", ODD)
def test_odd_strings_give_what_the_general_path_gives(value: str) -> None:
    assert ours(value) == reference(value)


def test_random_valid_times_give_the_same_milliseconds() -> None:
    values = random_times(20_000, seed=14)
    mismatches = [(v, ours(v), reference(v)) for v in values if ours(v) != reference(v)]
    assert not mismatches, mismatches[:5]
    assert sum(_iso_ms(v) is not None for v in values) > 15_000  # the fast path was taken


def test_every_millisecond_of_a_second_and_truncated_fractions() -> None:
    values = [f"2026-01-01T00:00:00.{ms:03d}Z" for ms in range(1000)]
    values += [f"2026-01-01T00:00:00.{us:06d}+01:00" for us in range(0, 1_000_000, 997)]
    assert [ours(v) for v in values] == [reference(v) for v in values]
    assert ours("2026-01-01T00:00:00.123999Z") == 1_767_225_600_123  # truncated, not rounded
