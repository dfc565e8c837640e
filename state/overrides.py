"""Live overrides over the campaign file: what they are and how they apply (pure).

Where a setting comes from::

    effective config = the file (validated)  +  live overrides (Redis), override wins

- **Overrides** live in the hash ``kairos:config:overrides``: dotted key -> the value as
  typed, YAML scalar text (``triggers.abandoned_cart.delay`` -> ``45m``). ``kairos
  triggers enable/disable/set`` write them, ``kairos triggers reset`` removes them (the
  file rules that key again). Each is validated by the same reader as the file (a tiny
  YAML document per override), so a bad value gets the same message as in the file.
- **Announcements**: every CLI change is published on the channel ``kairos:config``.
- **History**: every change (CLI, and file edits seen by the workers, recorded once per
  edit with ``SET NX``) is pushed to the list ``kairos:config:history``, newest first,
  as JSON ``{at, by, source, key, old, new}``.

This module is the part both sides share and that touches nothing: key names, applying
overrides, diffs and history records. ``state/override_store.py`` is the CLI's side
(reads and writes Redis), ``state/config_watcher.py`` the worker's and dispatcher's
(follows the file and Redis, and swaps the running config).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import yaml

from core.config import Config
from core.config_file import ConfigError, Problem, config_to_dict, parse_config

OVERRIDES = "kairos:config:overrides"
CHANNEL = "kairos:config"
HISTORY = "kairos:config:history"
FILE_EDIT_PREFIX = "kairos:config:file-edit:"
HISTORY_LIMIT = 10_000
OVERRIDE_SOURCE = "live override"
SECTIONS = ("journey", "engine", "policy")

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def override_key(name: str, key: str) -> str:
    """``abandoned_cart`` + ``delay`` -> ``triggers.abandoned_cart.delay``.

    ``name`` may also be a global section (``policy`` + ``quiet_hours.enabled``).
    """
    return f"{name}.{key}" if name in SECTIONS else f"triggers.{name}.{key}"


def override_yaml(key: str, value: str) -> str:
    """The file form of one override: nested block mappings ending in ``last: value``."""
    parts = key.split(".")
    lines = [f"{'  ' * depth}{part}:" for depth, part in enumerate(parts[:-1])]
    lines.append(f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value}")
    return "\n".join(lines) + "\n"


def _override_problem(key: str, value: str) -> Problem | None:
    """What the reader cannot say about an override: its key's shape, one line only."""
    if not all(_SEGMENT.fullmatch(part) for part in key.split(".")) or "." not in key:
        return Problem(OVERRIDE_SOURCE, 0, key, "expected a dotted setting name")
    if "\n" in value or "\r" in value:
        return Problem(OVERRIDE_SOURCE, 0, key, "expected a value on one line")
    return None


def apply_overrides(base: Config, overrides: Mapping[str, str]) -> tuple[Config, list[Problem]]:
    """``base`` with every valid override applied, and the problems of the others."""
    cfg, problems = base, []
    for key in sorted(overrides):
        value = overrides[key]
        shape = _override_problem(key, value)
        if shape:
            problems.append(shape)
            continue
        try:
            cfg = parse_config(override_yaml(key, value), OVERRIDE_SOURCE, cfg)
        except ConfigError as exc:
            problems.extend(
                Problem(OVERRIDE_SOURCE, 0, key if p.key == "(syntax)" else p.key, p.message)
                for p in exc.problems
            )
    return cfg, problems


def flatten(cfg: Config) -> dict[str, Any]:
    """Every setting by dotted key, in file form (``triggers.abandoned_cart.delay`` -> ``30m``)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    walk("", config_to_dict(cfg))
    return out


def shown(value: Any) -> str:
    """A setting as it would be written in the file: ``30m``, ``true``, ``"{x} left"``."""
    if value is None:
        return "(unset)"
    return yaml.safe_dump([value], default_flow_style=True, width=1 << 20).strip()[1:-1]


def diff(old: Config, new: Config) -> list[tuple[str, str, str]]:
    """``(key, old, new)`` for every setting that differs, in file form."""
    a, b = flatten(old), flatten(new)
    return [(k, shown(a.get(k)), shown(b.get(k))) for k in b if a.get(k) != b.get(k)]


def history_entry(key: str, old: str, new: str, by: str, source: str, at: int | None = None) -> str:
    """One ``kairos:config:history`` record (JSON)."""
    at = int(time.time() * 1000) if at is None else at
    record = {"at": at, "by": by, "source": source, "key": key, "old": old, "new": new}
    return json.dumps(record, sort_keys=True)


def file_config(text: str | None, source: str) -> Config:
    """The file's config; a missing file (``None``) means every default."""
    return Config() if text is None else parse_config(text, source)


def text_digest(text: str | None) -> str:
    """A short fingerprint of a file's text (``None``: no file), to notice edits."""
    return hashlib.sha256(b"\0" if text is None else text.encode()).hexdigest()[:16]


def decode_overrides(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """The overrides hash as Redis returns it (bytes or text) -> ``{key: value}``."""

    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    return {text(k): text(v) for k, v in mapping.items()}
