"""Replay's input: the lines of its files, decoded once, events in time order.

Every line goes through ``stream.events.decode_line``, the worker's decoder in its
file form, so a file and a topic are checked and worded alike. Decoding runs with
the cycle collector off (``no_gc``): hundreds of thousands of new records without
cycles make every collection pass pure cost.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path

from core.model import Event
from stream.events import ProfileLine, Rejection, decode_line

SHOWN_ERRORS = 5  # invalid lines quoted ("file:line: reason"); the rest are counted


@dataclass(slots=True)
class Lines:
    """Every line of the input files, blank ones included, so a line's index gives its place."""

    names: list[str]
    starts: list[int]  # index in ``lines`` of each file's first line
    lines: list[bytes]

    def where(self, index: int) -> str:
        """``file:line`` of the line at ``index``."""
        file = bisect_right(self.starts, index) - 1
        return f"{self.names[file]}:{index - self.starts[file] + 1}"


@dataclass(slots=True)
class Loaded:
    """Decoded input: events sorted by time (ties keep file order), profiles by when they apply."""

    events: list[Event]
    profiles: list[ProfileLine]
    invalid: int = 0
    errors: list[str] = field(default_factory=list)  # "file:line: reason", the first few
    seconds: float = 0.0


def read(paths: Iterable[str | Path]) -> Lines:
    """Every line of the files, in order."""
    names: list[str] = []
    starts: list[int] = []
    lines: list[bytes] = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        names.append(str(path))
        starts.append(len(lines))
        lines.extend(data.splitlines())
    return Lines(names, starts, lines)


def load(paths: Iterable[str | Path]) -> Loaded:
    """Read and decode every line of the files."""
    started = time.perf_counter()
    loaded = decode(read(paths))
    loaded.seconds = time.perf_counter() - started
    return loaded


def decode(source: Lines, indexes: Iterable[int] | None = None) -> Loaded:
    """Decode the lines at ``indexes`` (default: all) and sort them by time."""
    with no_gc():
        return _decode(source, indexes)


def _decode(source: Lines, indexes: Iterable[int] | None) -> Loaded:
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
            if len(loaded.errors) < SHOWN_ERRORS:
                loaded.errors.append(f"{source.where(i)}: {item.error}")  # type: ignore[union-attr]
        else:
            profiles.append(item)  # type: ignore[arg-type]
    events.sort(key=_ts)
    profiles.sort(key=_at)
    return loaded


_ts = attrgetter("ts")
_at = itemgetter(0)


@contextmanager
def no_gc() -> Iterator[None]:
    """The cycle collector off for a batch of records without cycles (~30% of a replay)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
