"""Replay on several processes: customers split between them, results merged.

Customers are independent (state, timers and decisions are per customer), so
``run_replay`` splits the lines by a hash of their ``customer_id`` and each
process decodes and replays its share. The parent reads the files once (the
serial part); every process routes one block of the lines into shared memory
(``Split``). Each forked child gets the lines as its ``Process`` arguments,
inherited by the fork (no copy, no pickling), and talks to the parent over its
own pipe: its block routed, its last event time, the time every shard's clock
ends at, and its results. Should a line's customer be misread when routing (a
``customer_id`` key nested in ``properties`` before the real one), the replay
runs again on one process.
"""

from __future__ import annotations

import mmap
import re
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from multiprocessing.connection import Connection
from operator import attrgetter
from pathlib import Path
from typing import Any

from core.config import Config
from core.effect import Effect
from kairos.replay.customers import merge as merge_population
from kairos.replay.lines import SHOWN_ERRORS, Lines, Loaded, decode, no_gc, read
from kairos.replay.loop import SAMPLES, Result, Until, replay

MIN_LINES_TO_SHARD = 10_000  # below this, forking costs more than it saves
# What a forked shard never frees: it exits (``os._exit``, by multiprocessing) right after
# sending its results, and freeing millions of events and states first only made the
# parent wait longer for it.
_KEEP: list[object] = []
_ROUTED = "routed"  # a process's block of routes is written (to the parent; back: all are)
_CUSTOMER = re.compile(rb'"customer_id"\s*:\s*"([^"\\]*)"')


def run_replay(
    paths: Iterable[str | Path],
    cfgs: list[Config],
    *,
    jobs: int = 1,
    keep_decisions: bool = False,
    until: Until | None = None,
    keep_customers: bool = False,
) -> list[Result]:
    """Replay the files once per config, on ``jobs`` processes; the results are exact."""
    with no_gc():  # and none after the shards' results come back, or the merge
        started = time.perf_counter()
        source = read(paths)
        # Recommendations learn from every customer's events: one process sees them all.
        one_model = any(cfg.recommend.enabled for cfg in cfgs)
        if jobs > 1 and len(source.lines) >= MIN_LINES_TO_SHARD and not one_model:
            split = Split(source, mmap.mmap(-1, len(source.lines)), jobs)
            results = _sharded(split, cfgs, keep_decisions, until, keep_customers)
            if not any(r.misrouted for r in results):
                elapsed = time.perf_counter() - started
                for r in results:
                    r.seconds = elapsed / len(results)
                return results
        loaded = decode(source)
        loaded.seconds = time.perf_counter() - started
        return [
            replay(
                loaded,
                cfg,
                keep_decisions=keep_decisions,
                until=until,
                keep_customers=keep_customers,
            )
            for cfg in cfgs
        ]


def _route(lines: list[bytes], jobs: int) -> list[int]:
    """The shard of each line: a hash of its ``customer_id``, read without parsing the line."""
    search, crc = _CUSTOMER.search, zlib.crc32
    return [crc(m.group(1)) % jobs if (m := search(line)) is not None else 0 for line in lines]


def _shard_of(customer_id: str, jobs: int) -> int:
    return zlib.crc32(customer_id.encode()) % jobs


@dataclass(slots=True)
class Split:
    """The input, and the shard each of its lines goes to.

    ``routes`` (a byte per line) is memory shared by the forked processes: each routes
    one block of the lines in parallel (``route``), and reads them all once every block
    is done. Routing in the parent alone, before forking, was a serial ~0.6 s per
    million lines.
    """

    source: Lines
    routes: mmap.mmap
    jobs: int

    def route(self, index: int) -> None:
        """Route block ``index`` of the lines (one of ``jobs`` equal blocks)."""
        lines, jobs = self.source.lines, self.jobs
        low, high = len(lines) * index // jobs, len(lines) * (index + 1) // jobs
        self.routes[low:high] = bytes(_route(lines[low:high], jobs))

    def load(self, index: int) -> tuple[Loaded, int]:
        """Decode shard ``index``'s lines; and how many of its customers belong to another."""
        started = time.perf_counter()
        mine = [i for i, shard in enumerate(self.routes[:]) if shard == index]
        loaded = decode(self.source, mine)
        customers = {ev.customer_id for ev in loaded.events}
        customers.update(p.customer_id for p in loaded.profiles)
        misrouted = sum(_shard_of(c, self.jobs) != index for c in customers)
        loaded.seconds = time.perf_counter() - started
        return loaded, misrouted


def _sharded(
    split: Split,
    cfgs: list[Config],
    keep_decisions: bool,
    until: Until | None,
    keep_customers: bool = False,
) -> list[Result]:
    """Shard 0 here, the others in forked children; one merged result per config."""
    context = get_context("fork")
    children = []
    ours: list[Connection] = []
    try:
        for index in range(1, split.jobs):
            mine, theirs = context.Pipe()
            child = context.Process(
                target=_child,
                args=(split, index, cfgs, keep_decisions, until, theirs, keep_customers),
                daemon=True,
            )
            child.start()
            children.append(child)
            ours.append(mine)
            theirs.close()  # the child's copy only: its death ends our wait (EOFError)
        split.route(0)
        for conn in ours:
            _receive(conn)  # its block is routed
        for conn in ours:
            conn.send(_ROUTED)
        loaded, misrouted = split.load(0)
        results = []
        for cfg in cfgs:
            part = replay(
                loaded,
                cfg,
                keep_decisions=keep_decisions,
                end=partial(_agree, ours),
                until=until,
                keep_customers=keep_customers,
            )
            part.misrouted = misrouted
            results.append(_merge([part, *(_receive(conn) for conn in ours)]))
        return results
    except BaseException:
        for child in children:
            child.terminate()
        raise
    finally:
        for child in children:
            child.join()
        for conn in ours:
            conn.close()
        split.routes.close()


def _child(
    split: Split,
    index: int,
    cfgs: list[Config],
    keep_decisions: bool,
    until: Until | None,
    conn: Connection,
    keep_customers: bool = False,
) -> None:
    """A forked shard: its share, replayed once per config, each result sent to the parent."""
    try:
        split.route(index)
        conn.send(_ROUTED)
        _receive(conn)  # every block is routed
        loaded, misrouted = split.load(index)
        _KEEP.append(loaded)
        for cfg in cfgs:
            end = partial(_ask, conn)
            result = replay(
                loaded,
                cfg,
                keep_decisions=keep_decisions,
                end=end,
                until=until,
                keep_customers=keep_customers,
                keep=_KEEP,
            )
            result.misrouted = misrouted
            conn.send(result)
            _KEEP.append(result)
    except BaseException:
        conn.send(_Failed(traceback.format_exc()))
    finally:
        conn.close()


def _agree(conns: list[Connection], last: int) -> int:
    """The parent's ``end``: every shard's clock ends at the last event of them all."""
    clock = max([last, *(int(_receive(conn)) for conn in conns)])
    for conn in conns:
        conn.send(clock)
    return clock


def _ask(conn: Connection, last: int) -> int:
    """A child's ``end``: its last event time to the parent, the agreed end back."""
    conn.send(last)
    return int(_receive(conn))


@dataclass(frozen=True, slots=True)
class _Failed:
    traceback: str


def _receive(conn: Connection) -> Any:
    try:
        message = conn.recv()
    except EOFError:
        raise RuntimeError("a replay process ended without sending its result") from None
    if isinstance(message, _Failed):
        raise RuntimeError(f"a replay process failed:\n{message.traceback}")
    return message


def _merge(parts: list[Result]) -> Result:
    """One result from the shards' results (decisions in decision-time order)."""
    merged = parts[0]
    for part in parts[1:]:
        merged.events += part.events
        merged.invalid += part.invalid
        merged.seconds = max(merged.seconds, part.seconds)
        merged.timers_fired += part.timers_fired
        merged.misrouted += part.misrouted
        merged.last_event = max(merged.last_event, part.last_event)
        merged.clock = max(merged.clock, part.clock)
        for kind, (count, due) in part.pending.items():
            entry = merged.pending.setdefault(kind, [0, due])
            entry[0] += count
            entry[1] = min(entry[1], due)
        merged.stages.update(part.stages)
        merge_population(merged.population, part.population)
        merged.owners.update(part.owners)
        merged.errors.extend(part.errors)
        merged.samples.extend(part.samples)
        for trigger, counts in part.fired.items():
            merged.fired.setdefault(trigger, Counter()).update(counts)
        for trigger, customers in part.per_customer.items():
            merged.per_customer.setdefault(trigger, Counter()).update(customers)
        for trigger, eff in part.effect.items():
            merged.effect.setdefault(trigger, Effect()).add(eff)
        if merged.decisions is not None and part.decisions is not None:
            merged.decisions.extend(part.decisions)
    merged.errors.sort(key=_error_order)
    del merged.errors[SHOWN_ERRORS:]
    merged.samples = sorted(merged.samples, key=attrgetter("decided_at"))[:SAMPLES]
    if merged.decisions is not None:
        merged.decisions.sort(key=attrgetter("decided_at"))
    return merged


def _error_order(error: str) -> tuple[str, int]:
    where = error.split(": ", 1)[0]
    name, _, line = where.rpartition(":")
    return name, int(line)
