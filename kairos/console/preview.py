"""Preview a pending change on a recorded event file: ``kairos replay --compare`` as a page.

The file is replayed twice through ``kairos.replay.run_replay`` (the same core the
workers run, on event time): once with the running config (file + live overrides) and
once with the pending change applied; ``kairos.replay.compare`` gives the difference per
trigger. The page gets counts only: the replay's sample customer ids and the invalid
lines' text stay here.

Recorded files are the ``*.jsonl`` files of one folder (``--events``); a name from the
page is looked up among them, never joined to a path as given.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.config import Config
from core.durations import iso
from kairos.console.control import Rejected
from kairos.replay import Until, compare, parse_until, run_replay

SUFFIXES = (".jsonl", ".ndjson")


def event_files(folder: Path) -> list[dict[str, Any]]:
    """The recorded event files a preview may use, by name, with their size."""
    if not folder.is_dir():
        return []
    return [
        {"name": p.name, "bytes": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in SUFFIXES
    ]


def event_file(folder: Path, name: str) -> Path:
    """The file called ``name`` in ``folder``; Rejected (saying what there is) otherwise."""
    names = [f["name"] for f in event_files(folder)]
    if name not in names:
        there = ", ".join(names[:5]) if names else f"none: put *.jsonl files in {folder}"
        raise Rejected(f"no recorded event file named {name!r}; there are: {there}", "file")
    return folder / name


def until_of(text: str) -> Until | None:
    """``--until``'s forms (``+1d``, a time); empty means the clock stops at the last event."""
    if not text.strip():
        return None
    try:
        return parse_until(text)
    except argparse.ArgumentTypeError as exc:
        raise Rejected(f"run the clock on: {exc}", "until") from None


def preview(path: Path, running: Config, pending: Config, until: Until | None) -> dict[str, Any]:
    """What ``pending`` would fire on ``path`` against ``running``, per trigger (counts only)."""
    new, old = run_replay([path], [pending, running], jobs=1, until=until)
    if not new.events:
        what = f"{new.invalid:,} invalid line(s)" if new.invalid else "no events"
        raise Rejected(f"no valid event in {path.name}: {what}; nothing to preview", "file")
    if until is not None and until.at is not None and until.at < new.last_event:
        raise Rejected(
            f"run the clock on: {until} is before the last event ({iso(new.last_event)}); "
            "give a later time or +DURATION",
            "until",
        )
    triggers = {}
    for trigger, c in compare(old, new).items():
        triggers[trigger] = {
            "running": c["before"],
            "pending": c["after"],
            "difference": c["after"] - c["before"],
            "customers_changed": c["customers_changed"],
            "running_by_status": dict(old.fired.get(trigger, {})),
            "pending_by_status": dict(new.fired.get(trigger, {})),
        }
    return {
        "file": path.name,
        "events": new.events,
        "invalid": new.invalid,
        "clock": iso(new.clock) if new.clock else "",
        "seconds": round(new.seconds + old.seconds, 2),
        "triggers": triggers,
    }
