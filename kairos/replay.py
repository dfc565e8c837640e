"""``kairos replay``: run the core offline over event files, with an event-time clock.

No broker, no Redis: the same ``core.engine`` calls the live worker makes, in
event-time order. Lines are the contract's event objects (any order; they are
sorted by ``ts``, ties keep file order, and each event's topic follows from its
type) and profile records ``{"topic": "profiles", "customer_id": ..., "value":
{...} or null}``, applied at their ``updated_at`` (before every event when it
is missing). Before an event at time t every timer due at or before t fires,
in due order, with the clock at its due time; the replay ends at the last
event's time with every timer due by then fired, or later with ``--until TIME``
or ``--until +DURATION`` (past the last event). Deadlines still pending at the
end are reported per timer.

What replay cannot see: frequency caps (Redis, applied by the dispatcher) and
delivery; statuses are the ones the core decides (consent, cooldown, holdout,
shadow, quiet hours).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import re
import sys
import time
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import orjson

from core import engine
from core.config import Config
from core.durations import format_duration, iso, parse_duration
from core.effect import Effect
from core.model import STAGES, CustomerState, Decision, Event, Step
from kairos import arguments
from kairos.errors import UserError
from kairos.inputs import campaign_config, readable_file, writable_file
from stream.events import ProfileLine, Rejection, decode_line

_SHOWN_ERRORS = 5
_SAMPLE_IDS = 5
_MIN_LINES_TO_SHARD = 10_000  # below this, forking costs more than it saves


@dataclass(slots=True)
class Loaded:
    """Decoded input, sorted by event time."""

    events: list[Event]
    profiles: list[ProfileLine]
    invalid: int = 0
    errors: list[str] = field(default_factory=list)  # "file:line: reason", the first few
    seconds: float = 0.0
    misrouted: int = 0  # customers found in the wrong shard (see ``run_replay``)


@dataclass(frozen=True, slots=True)
class Until:
    """Where ``--until`` stops the clock: at a time, or a duration after the last event."""

    at: int | None = None
    after: int | None = None

    def clock(self, last: int) -> int:
        if self.after is not None:
            return last + self.after
        return max(last, self.at or 0)

    def __str__(self) -> str:
        return f"+{format_duration(self.after)}" if self.after is not None else iso(self.at or 0)


def parse_until(text: str) -> Until:
    """``+1h`` (after the last event), ``2026-01-08T12:00:00Z`` or epoch milliseconds."""
    text = text.strip()
    try:
        if text.startswith("+"):
            return Until(after=parse_duration(text[1:]))
        if text.isdigit():
            return Until(at=int(text))
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected +DURATION (like +1h or +7d) or a time like 2026-01-08T12:00:00Z, "
            f"got {text!r}" + (f" ({exc})" if text.startswith("+") else "")
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected a time with a UTC offset (like 2026-01-08T12:00:00Z), got {text!r}"
        )
    return Until(at=int(moment.timestamp() * 1000))


@dataclass(slots=True)
class Result:
    """What one replay produced."""

    events: int
    invalid: int
    seconds: float
    fired: dict[str, Counter[str]]  # trigger -> status -> decisions
    stages: Counter[str]
    effect: dict[str, Effect]
    samples: list[Decision]
    decisions: list[Decision] | None  # every decision, when asked for
    per_customer: dict[str, Counter[str]]  # trigger -> customer_id -> decisions
    timers_fired: int = 0
    errors: list[str] = field(default_factory=list)
    misrouted: int = 0
    last_event: int = 0  # time of the last event
    clock: int = 0  # where the clock stopped: the last event, or later with ``until``
    pending: dict[str, list[int]] = field(default_factory=dict)  # timer -> [count, next due]

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class _Input:
    """Every line of the input files, blank ones included, so a line's index gives its place."""

    names: list[str]
    starts: list[int]  # index in ``lines`` of each file's first line
    lines: list[bytes]

    def where(self, index: int) -> str:
        file = bisect_right(self.starts, index) - 1
        return f"{self.names[file]}:{index - self.starts[file] + 1}"


def load(paths: Iterable[str | Path]) -> Loaded:
    """Decode every line of the files and sort the events by time (stable)."""
    started = time.perf_counter()
    loaded = _decode_lines(_read(paths))
    loaded.seconds = time.perf_counter() - started
    return loaded


def _read(paths: Iterable[str | Path]) -> _Input:
    names: list[str] = []
    starts: list[int] = []
    lines: list[bytes] = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        names.append(str(path))
        starts.append(len(lines))
        lines.extend(data.splitlines())
    return _Input(names, starts, lines)


def _route(lines: list[bytes], jobs: int) -> list[int]:
    """The shard of each line: a hash of its ``customer_id`` (see ``run_replay``).

    One comprehension over every line: this is the serial part of a sharded replay.
    """
    search, crc = _CUSTOMER.search, zlib.crc32
    return [crc(m.group(1)) % jobs if (m := search(line)) is not None else 0 for line in lines]


def _decode_lines(
    source: _Input, indexes: Iterable[int] | None = None, shard: tuple[int, int] | None = None
) -> Loaded:
    """Decode the lines at ``indexes`` (default: all), ``shard`` = (this one, of how many)."""
    with _no_gc():
        return _decode_all(source, indexes, shard)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Hundreds of thousands of new records without cycles: a collection pass over them
    is pure cost (about 30% of a replay when left on)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _decode_all(
    source: _Input, indexes: Iterable[int] | None, shard: tuple[int, int] | None
) -> Loaded:
    events: list[Event] = []
    profiles: list[ProfileLine] = []
    loaded = Loaded(events, profiles)
    append = events.append
    lines = source.lines
    for i in range(len(lines)) if indexes is None else indexes:
        line = lines[i]
        if not line or line.isspace():
            continue
        item = decode_line(line)
        if item.__class__ is Event:
            append(item)  # type: ignore[arg-type]
        elif item.__class__ is Rejection:
            loaded.invalid += 1
            if len(loaded.errors) < _SHOWN_ERRORS:
                loaded.errors.append(f"{source.where(i)}: {item.error}")  # type: ignore[union-attr]
        else:
            profiles.append(item)  # type: ignore[arg-type]
    if shard is not None:  # every customer must be in the shard its lines were routed to
        index, jobs = shard
        for customer_id in {ev.customer_id for ev in events} | {p[1] for p in profiles}:
            if _shard_of(customer_id.encode(), jobs) != index:
                loaded.misrouted += 1
    events.sort(key=_ts)
    profiles.sort(key=_first)
    return loaded


_ts = attrgetter("ts")
_first = itemgetter(0)


def replay(
    loaded: Loaded,
    cfg: Config,
    *,
    keep_decisions: bool = False,
    end: Callable[[int], int] | None = None,
    until: Until | None = None,
) -> Result:
    """Run the core over ``loaded`` with an event-time clock; see the module docstring.

    The clock ends at the last event's time (``end``, for shards, maps this
    replay's last event time to the last over every shard), or where ``until`` says.
    """
    started = time.perf_counter()
    states: dict[str, CustomerState] = {}
    heap: list[tuple[int, str, str]] = []
    fired: dict[str, Counter[str]] = {}
    effect: dict[str, Effect] = {}
    per_customer: dict[str, Counter[str]] = {}
    samples: list[Decision] = []
    decisions: list[Decision] | None = [] if keep_decisions else None
    timers_fired = 0
    push, pop = heapq.heappush, heapq.heappop
    on_event, on_timer = engine.on_event, engine.on_timer

    def emit(step: Step) -> None:
        for change in step.timers:
            if change.due is not None:
                push(heap, (change.due, change.customer_id, change.kind))
        for d in step.decisions:
            trigger = d.trigger
            counts = fired.get(trigger)
            if counts is None:
                counts = fired[trigger] = Counter()
                effect[trigger] = Effect()
                per_customer[trigger] = Counter()
            counts[d.status] += 1
            effect[trigger].decided(d)
            per_customer[trigger][d.customer_id] += 1
            if decisions is not None:
                decisions.append(d)
            if len(samples) < 2 and d.status == "send":
                samples.append(d)
        for c in step.conversions:
            eff = effect.get(c.trigger)
            if eff is None:
                eff = effect[c.trigger] = Effect()
            eff.converted(c)

    def fire_until(until: int) -> int:
        n = 0
        while heap and heap[0][0] <= until:
            due, customer_id, kind = pop(heap)
            state = states[customer_id]
            if state.timers.get(kind) != due:
                continue  # cancelled or superseded
            n += 1
            step = on_timer(state, kind, due, due, cfg)
            if step.timers or step.decisions or step.conversions:
                emit(step)
        return n

    profiles = loaded.profiles
    next_profile = 0
    # Time of the next profile record to apply: one comparison per event instead of three.
    profile_at = profiles[0][0] if profiles else None
    with _no_gc():
        for ev in loaded.events:
            t = ev.ts
            if heap and heap[0][0] <= t:
                timers_fired += fire_until(t)
            if profile_at is not None and profile_at <= t:
                while next_profile < len(profiles) and profiles[next_profile][0] <= t:
                    _, customer_id, profile = profiles[next_profile]
                    next_profile += 1
                    state = states.get(customer_id)
                    if state is None:
                        state = states[customer_id] = CustomerState(customer_id)
                    engine.on_profile(state, profile)
                profile_at = profiles[next_profile][0] if next_profile < len(profiles) else None
            customer_id = ev.customer_id
            state = states.get(customer_id)
            if state is None:
                state = states[customer_id] = CustomerState(customer_id)
            step = on_event(state, ev, t, cfg)
            if step.timers or step.decisions or step.conversions:
                emit(step)
        last = loaded.events[-1].ts if loaded.events else 0
        if end is not None:
            last = end(last)
        clock = until.clock(last) if until is not None and last else last
        if clock:
            timers_fired += fire_until(clock)
        stages = Counter(state.stage for state in states.values())
    return Result(
        events=len(loaded.events),
        invalid=loaded.invalid,
        seconds=loaded.seconds + time.perf_counter() - started,
        fired=fired,
        stages=stages,
        effect=effect,
        samples=samples,
        decisions=decisions,
        per_customer=per_customer,
        timers_fired=timers_fired,
        errors=loaded.errors,
        last_event=last,
        clock=clock,
        pending=_pending(states),
    )


def _pending(states: dict[str, CustomerState]) -> dict[str, list[int]]:
    """Deadlines not yet due at the end: per timer, how many and the first one due."""
    pending: dict[str, list[int]] = {}
    for state in states.values():
        for kind, due in state.timers.items():
            entry = pending.get(kind)
            if entry is None:
                pending[kind] = [1, due]
            else:
                entry[0] += 1
                entry[1] = min(entry[1], due)
    return pending


def _shard_of(customer_id: bytes, jobs: int) -> int:
    return zlib.crc32(customer_id) % jobs


_CUSTOMER = re.compile(rb'"customer_id"\s*:\s*"([^"\\]*)"')
_INPUT: list[Any] = []  # [_Input, shard of each line]: inherited by forked shard workers


_ENDS: list[Any] = []  # [to the parent, to the workers]: queues agreeing on the clock's end


def _end_of_worker(last: int) -> int:
    up, down = _ENDS
    up.put(last)
    return int(down.get())


def _end_of_parent(jobs: int) -> Callable[[int], int]:
    def end(last: int) -> int:
        up, down = _ENDS
        clock = max([last] + [up.get() for _ in range(jobs - 1)])
        for _ in range(jobs - 1):
            down.put(clock)
        return clock

    return end


def _run_shard(
    index: int, jobs: int, cfg: Config, keep_decisions: bool, until: Until | None
) -> Result:
    source, shards = _INPUT
    started = time.perf_counter()
    mine = [i for i, shard in enumerate(shards) if shard == index]
    loaded = _decode_lines(source, mine, (index, jobs))
    loaded.seconds = time.perf_counter() - started
    end = _end_of_parent(jobs) if index == 0 else _end_of_worker
    result = replay(loaded, cfg, keep_decisions=keep_decisions, end=end, until=until)
    result.misrouted = loaded.misrouted
    return result


def run_replay(
    paths: Iterable[str | Path],
    cfgs: list[Config],
    *,
    jobs: int = 1,
    keep_decisions: bool = False,
    until: Until | None = None,
) -> list[Result]:
    """Replay the files once per config, on ``jobs`` processes; the results are exact.

    Customers are independent (state, timers and decisions are per customer), so
    the lines are split by a hash of their ``customer_id`` and each process
    decodes and replays its share; the results are merged. Should a line's
    customer be misread when routing (a ``customer_id`` key nested in
    ``properties`` before the real one), the replay falls back to one process.
    """
    with _no_gc():  # and none after the shards' results come back, or the merge
        return _run_replay(paths, cfgs, jobs, keep_decisions, until)


def _run_replay(
    paths: Iterable[str | Path],
    cfgs: list[Config],
    jobs: int,
    keep_decisions: bool,
    until: Until | None,
) -> list[Result]:
    started = time.perf_counter()
    source = _read(paths)
    if jobs > 1 and len(source.lines) >= _MIN_LINES_TO_SHARD:
        _INPUT[:] = [source, _route(source.lines, jobs)]
        context = get_context("fork")
        _ENDS[:] = [context.SimpleQueue(), context.SimpleQueue()]
        try:
            with ProcessPoolExecutor(jobs - 1, mp_context=context) as pool:
                results = []
                for cfg in cfgs:
                    futures = [
                        pool.submit(_run_shard, i, jobs, cfg, keep_decisions, until)
                        for i in range(1, jobs)
                    ]
                    parts = [_run_shard(0, jobs, cfg, keep_decisions, until)]
                    parts.extend(f.result() for f in futures)
                    results.append(_merge(parts))
        finally:
            _INPUT.clear()
            _ENDS.clear()
        if not any(r.misrouted for r in results):
            elapsed = time.perf_counter() - started
            for r in results:
                r.seconds = elapsed / len(results)
            return results
    loaded = _decode_lines(source)
    loaded.seconds = time.perf_counter() - started
    return [replay(loaded, cfg, keep_decisions=keep_decisions, until=until) for cfg in cfgs]


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
    del merged.errors[_SHOWN_ERRORS:]
    merged.samples = sorted(merged.samples, key=attrgetter("decided_at"))[:2]
    if merged.decisions is not None:
        merged.decisions.sort(key=attrgetter("decided_at"))
    return merged


def _error_order(error: str) -> tuple[str, int]:
    where = error.split(": ", 1)[0]
    name, _, line = where.rpartition(":")
    return name, int(line)


def compare(old: Result, new: Result) -> dict[str, Any]:
    """Per trigger: decisions before and after, and the customers whose count changed."""
    out: dict[str, Any] = {}
    for trigger in sorted(set(old.per_customer) | set(new.per_customer)):
        before = old.per_customer.get(trigger, Counter())
        after = new.per_customer.get(trigger, Counter())
        changed = sorted(c for c in set(before) | set(after) if before[c] != after[c])
        out[trigger] = {
            "before": sum(before.values()),
            "after": sum(after.values()),
            "customers_changed": len(changed),
            "sample": changed[:_SAMPLE_IDS],
        }
    return out


def summary(result: Result) -> dict[str, Any]:
    """The ``--json`` object."""
    return {
        "events": result.events,
        "invalid": result.invalid,
        "seconds": round(result.seconds, 3),
        "events_per_s": round(result.events_per_s),
        "fired": {t: sum(c.values()) for t, c in sorted(result.fired.items())},
        "stages": {s: result.stages.get(s, 0) for s in STAGES},
        "effect": {t: e.summary() for t, e in sorted(result.effect.items())},
        "last_event": result.last_event,
        "clock": result.clock,
        "timers_fired": result.timers_fired,
        "pending": {
            kind: {"count": count, "next_due": due}
            for kind, (count, due) in sorted(result.pending.items())
        },
    }


def _human(result: Result, comparison: dict[str, Any] | None) -> str:
    lines = [
        f"replayed {result.events:,} events ({result.invalid:,} invalid) in "
        f"{result.seconds:.2f}s: {result.events_per_s:,.0f} events/s, "
        f"{result.timers_fired:,} timers fired"
    ]
    lines.extend(invalid_lines(result.errors, result.invalid))
    lines.extend(_pending_lines(result))
    lines.append("decisions by trigger:")
    if not result.fired:
        lines.append("  (none)")
    for trigger, counts in sorted(result.fired.items()):
        by_status = ", ".join(f"{s} {n:,}" for s, n in counts.most_common())
        lines.append(f"  {trigger:<20} {sum(counts.values()):>9,}  ({by_status})")
    for d in result.samples:
        lines.append(f"sample: {d.trigger} for {d.customer_id} via {d.channel}: {d.reason}")
        lines.append(f"        payload {orjson.dumps(d.payload).decode()}")
    lines.append("customers by stage at the end:")
    lines.append("  " + ", ".join(f"{s} {result.stages.get(s, 0):,}" for s in STAGES))
    measured = {t: e.summary() for t, e in sorted(result.effect.items()) if e.held_out}
    if measured:
        lines.append("effect (conversion rate sent - held out, 95% CI):")
        for trigger, s in measured.items():
            ci = s["ci95"]
            lines.append(
                f"  {trigger:<20} sent {s['sent']:,} ({s['conversions_sent']:,} converted), "
                f"held out {s['held_out']:,} ({s['conversions_held_out']:,}): uplift "
                f"{s['uplift']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]"
            )
    if comparison is not None:
        lines.append("compare (old config -> new config):")
        for trigger, c in comparison.items():
            sample = ", ".join(c["sample"])
            lines.append(
                f"  {trigger:<20} {c['before']:>9,} -> {c['after']:<9,} "
                f"{c['customers_changed']:,} customers change"
                + (f" (e.g. {sample})" if sample else "")
            )
    return "\n".join(lines)


def invalid_lines(errors: list[str], invalid: int) -> list[str]:
    """The first invalid lines ("file:line: reason") and how many there were in all."""
    if not invalid:
        return []
    shown = f"; the first {len(errors)}" if invalid > len(errors) else ""
    return [f"invalid lines ({invalid:,}{shown}):", *(f"  {e}" for e in errors)]


_TIMER_NOTES = {"journey": "  (stage at_risk / churned: churn_alert, win_back)"}


def _pending_lines(result: Result) -> list[str]:
    if not result.clock:
        return []
    ran = ""
    if result.clock != result.last_event:
        ran = f", {format_duration(result.clock - result.last_event)} past the last event"
    if not result.pending:
        return [f"clock ended at {iso(result.clock)}{ran}; no deadlines pending"]
    lines = [f"clock ended at {iso(result.clock)}{ran}; deadlines still pending:"]
    for kind, (count, due) in sorted(result.pending.items()):
        note = _TIMER_NOTES.get(kind, "")
        lines.append(f"  {kind:<24} {count:>9,}  first due {iso(due)}{note}")
    first = min(due for _, due in result.pending.values())
    lines.append(
        f"  (run the clock on with --until +DURATION, e.g. --until "
        f"+{_round_up(first - result.clock)} fires the first)"
    )
    return lines


_STEPS = ("1m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d", "2d", "3d", "7d")
_ROUND = tuple(parse_duration(step) for step in (*_STEPS, "14d", "30d", "90d"))


def _round_up(ms: int) -> str:
    """A duration a person would type that reaches at least ``ms``: 29m31s -> 30m."""
    for step in _ROUND:
        if ms <= step:
            return format_duration(step)
    return format_duration(-(-ms // 86_400_000) * 86_400_000)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="EVENTS.jsonl", help="JSON-lines event files")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="trigger config file (default: the built-in defaults, not config/triggers.yaml)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--decisions-out",
        metavar="PATH",
        help="write every decision as one JSON line, shaped like an actions record",
    )
    parser.add_argument(
        "--jobs",
        type=arguments.count(1, 64),
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="processes to use, customers split between them (default: %(default)s)",
    )
    parser.add_argument(
        "--until",
        type=parse_until,
        metavar="TIME|+DURATION",
        help="run the clock on past the last event: +1h, +7d, or a time like "
        "2026-01-08T12:00:00Z (timers due by then fire)",
    )
    parser.add_argument(
        "--compare",
        metavar="OLD_CONFIG",
        help="also replay with this (old) config and show what changes per trigger",
    )


def run(args: argparse.Namespace) -> int:
    gc.disable()  # a batch command: its records live until it exits (see ``_no_gc``)
    for path in args.files:
        readable_file(path, "event file")
    cfg = campaign_config(args.config) if args.config else Config()
    old_cfg = campaign_config(args.compare) if args.compare else None
    if args.decisions_out:
        writable_file(args.decisions_out, "decisions file")
    cfgs = [cfg] if old_cfg is None else [cfg, old_cfg]
    results = run_replay(
        args.files, cfgs, jobs=args.jobs, keep_decisions=bool(args.decisions_out), until=args.until
    )
    result = results[0]
    if not result.events:
        for line in invalid_lines(result.errors, result.invalid):
            print(line, file=sys.stderr)
        files = ", ".join(args.files)
        if result.invalid:
            raise UserError(
                f"no valid event in {files}: {result.invalid:,} invalid line(s), the first "
                "shown above",
                code=1,
            )
        raise UserError(f"no events in {files}: nothing to replay", code=1)
    until = args.until
    if until is not None and until.at is not None and until.at < result.last_event:
        raise UserError(
            f"--until {until} is before the last event ({iso(result.last_event)}); it runs the "
            "clock on past the end: give a later time or +DURATION"
        )
    comparison = compare(results[1], result) if old_cfg is not None else None
    if args.decisions_out:
        with open(args.decisions_out, "wb") as out:
            for d in result.decisions or ():
                out.write(orjson.dumps(d.to_record()) + b"\n")
    if args.json:
        obj = summary(result)
        if comparison is not None:
            obj["compare"] = comparison
        print(orjson.dumps(obj).decode())
    else:
        print(_human(result, comparison))
    return 0
