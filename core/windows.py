"""Bounded event-time activity counts over sliding windows (10m, 1h, 24h, 7d, 30d).

Each counter is a short list of ``[bucket_start_ms, count]``: minute buckets for
the last hour, hour buckets for the last day, day buckets for 30 days; older
buckets are merged coarser as time passes and dropped after 30 days. Merging
runs when a new bucket starts a new hour and the counter holds more than
``_COMPACT_AT`` buckets, so a customer's windows stay under ~180 buckets per
counter however active they are, the merge costs at most one pass per hour
of activity, and a count over a window is exact to its bucket size (1 min for
windows up to an hour, 1 h up to a day, 1 day beyond).
"""

from __future__ import annotations

from bisect import insort

from core.durations import DAY, HOUR, MINUTE

WINDOWS = {"10m": 10 * MINUTE, "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
HORIZON = 30 * DAY
_COMPACT_AT = 48  # buckets in a counter before coarsening runs

Buckets = list[list[int]]  # sorted by start
START, COUNT = 0, 1  # a bucket: [start_ms, count]


def add(buckets: Buckets, ts: int, now: int, n: int = 1) -> None:
    """Count ``n`` at event time ``ts`` (``now`` is the newest event time seen)."""
    start = ts - ts % MINUTE
    if not buckets:
        buckets.append([start, n])
        return
    last = buckets[-1]
    if last[START] == start:
        last[COUNT] += n
        return
    if last[START] < start:
        buckets.append([start, n])
        # Coarsen at most once per hour boundary: bounded work however active the customer.
        if len(buckets) > _COMPACT_AT and start // HOUR != last[START] // HOUR:
            compact(buckets, now)
        return
    # Out of order: find its bucket (coarse buckets absorb old events) or insert one.
    for bucket in reversed(buckets):
        begin = bucket[START]
        if begin <= ts:
            if ts < begin + _width(begin, now):
                bucket[COUNT] += n
                return
            break
    insort(buckets, [start, n])


def _width(start: int, now: int) -> int:
    age = now - start
    return MINUTE if age < HOUR else HOUR if age < DAY else DAY


def compact(buckets: Buckets, now: int) -> None:
    """Merge old minute buckets into hours and old hours into days; drop beyond 30 days."""
    merged: Buckets = []
    for start, count in buckets:
        age = now - start
        if age >= HORIZON:
            continue
        coarse = start - start % (DAY if age >= DAY else HOUR if age >= HOUR else MINUTE)
        if merged and merged[-1][START] == coarse:
            merged[-1][COUNT] += count
        else:
            merged.append([coarse, count])
    buckets[:] = merged


def total(buckets: Buckets, now: int, window: int) -> int:
    """Events counted in ``(now - window, now]``, to bucket precision."""
    since = now - window
    n = 0
    for start, count in reversed(buckets):
        if start < since:
            break
        n += count
    return n
