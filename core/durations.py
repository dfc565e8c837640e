"""Durations as campaign owners write them: ``90s``, ``30m``, ``2h``, ``7d``, ``1w``."""

from __future__ import annotations

import re
import time

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


MAX_DURATION = 3650 * DAY  # ten years: beyond this a duration is a typo (99999d), not a plan


def parse_duration(text: str | int | float) -> int:
    """Return milliseconds for ``30m``, ``1h30m``, ``7d``; a bare number means seconds.

    Raises ValueError with the expected form when the text is not a duration, is
    negative, or is longer than ten years.
    """
    ms = _parse(text)
    if ms > MAX_DURATION:
        raise ValueError(f"{text} is too long: at most 3650d (ten years)")
    return ms


def _parse(text: str | int | float) -> int:
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like 30m, 2h or 7d, got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        return int(text * 1000)
    s = str(text).strip().lower()
    if s.startswith("-"):
        raise ValueError(f"a duration cannot be negative, got {text!r}")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"expected a duration like 30m, 2h or 7d, got {text!r}")
    return int(total)


def format_duration(ms: int) -> str:
    """The shortest exact form: 1800000 -> ``30m``; used by ``triggers list``."""
    if ms == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC to the second, for reasons people read."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))
