"""The README's trigger table, generated from the registered declarations.

``python scripts/readme_triggers.py`` writes it into README.md between the
:data:`START` and :data:`END` markers; ``tests/unit/test_trigger_contract.py``
fails when the README's copy differs from what the declarations give. Defaults
are read from each trigger's config type, so the table cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from core.durations import DAY, format_duration
from core.trigger import TriggerSpec

START, END = "<!-- triggers:start -->", "<!-- triggers:end -->"
_HEADER = (
    "| trigger | fires when | key parameters (default) | channel | exits / rules |",
    "|---|---|---|---|---|",
)


def markdown_table(specs: Iterable[TriggerSpec[Any]]) -> str:
    """One row per trigger, in registration order."""
    rows = list(_HEADER)
    for spec in specs:
        defaults = spec.config()
        durations = {f.name for f in fields(spec.config) if f.metadata.get("duration")}
        params = ", ".join(
            f"`{name}` {_shown(getattr(defaults, name), name in durations)}"
            for name in spec.doc.key_parameters
        )
        doc = spec.doc
        rows.append(
            f"| `{spec.name}` | {doc.fires_when} | {params} | {defaults.channel} | {doc.exits} |"
        )
    return "\n".join(rows)


def _shown(value: object, is_duration: bool) -> str:
    """A default as the table shows it: ``30m``, ``off``, ``0.25``, ``review_request``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if is_duration and isinstance(value, int):
        if not value:
            return "off"
        return f"{value // DAY}d" if value % DAY == 0 else format_duration(value)  # 7d, not 1w
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def replace_table(text: str, table: str) -> str:
    """``text`` (a README) with what stands between the markers replaced by ``table``."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"no {START} ... {END} markers")
    return f"{head}{START}\n{table}\n{END}{tail}"
