"""``core.durations.iso`` formats the date once per day; it must equal ``time.strftime``."""

from __future__ import annotations

import random
import time

from core.durations import iso


def strftime(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def test_iso_equals_strftime_of_the_whole_moment() -> None:
    rng = random.Random(14)
    values = [rng.randrange(-(10**12), 4_200_000_000_000) for _ in range(20_000)]
    values += [0, -1, 999, 1000, -1000, -1001, 86_399_999, 86_400_000, 1_767_225_599_999]
    values += [1_709_164_800_000 + k * 3_600_000 for k in range(-48, 48)]  # 2024-02-29
    assert [iso(v) for v in values] == [strftime(v) for v in values]
    assert iso(1_767_225_600_123) == "2026-01-01T00:00:00Z"
