"""The console's campaign control: read and change triggers exactly as ``kairos triggers`` does.

One source of truth: the effective config is the campaign file plus the live overrides in
Redis (``state/overrides.py``); a change is an override written with
``state.override_store.write_overrides`` (stored, recorded in the history and announced
to every worker in one transaction), validated by the same reader with the same
messages as ``kairos triggers set``. The only difference is the history's ``source``:
``console``, and ``by`` is the signed-in user.

Synchronous, like the CLI's store: the web app calls it from a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis

from core.config import Config
from core.config_file import ConfigError
from core.triggers import TRIGGER_TYPES
from kairos import inputs
from kairos.errors import UserError

# The CLI's own checks, so the console refuses what `kairos triggers set` refuses, in the
# same words. (Private in kairos/triggers_cli.py; see the console's README section.)
from kairos.triggers_cli import check_duration
from state import override_store as store
from state import overrides as live
from stream.security import redact_url, redis_kwargs

SOURCE = "console"
State = Literal["on", "off", "shadow"]
STATES: tuple[State, ...] = ("on", "off", "shadow")


class Rejected(Exception):
    """A change that was not made: ``message`` says why in the CLI's words; ``key`` which field."""

    def __init__(self, message: str, key: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.key = key
        self.status = status


@dataclass(frozen=True, slots=True)
class Change:
    """One setting that changed: dotted key, old and new value in file form."""

    key: str
    old: str
    new: str


def state_of(cfg: Config, name: str) -> State:
    t = cfg.triggers[name]
    return "off" if not t.enabled else "shadow" if t.shadow else "on"


class Control:
    """The campaign file at ``config_path`` plus the overrides in the Redis at ``redis_url``."""

    def __init__(self, config_path: str, config_source: str, redis_url: str) -> None:
        self.config_path = config_path
        self.config_source = config_source
        self.redis_url = redis_url
        self.client = redis.Redis.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=5, **redis_kwargs(redis_url)
        )

    # --- reading ---------------------------------------------------------------------------

    def file_config(self) -> tuple[Config, list[str]]:
        """The file's config and its problems, worded as ``kairos triggers validate`` words them.

        A file that does not validate gives the defaults here (as ``kairos triggers list``
        shows); the workers keep their last valid version, which the page says.
        """
        try:
            text = inputs.config_text(self.config_path)
        except UserError as exc:
            return Config(), [str(exc)]
        if text is None:
            if self.config_source != "the default":
                return Config(), [f"{self.config_path}: no such config file; check the path"]
            return Config(), []
        try:
            return inputs.parse_config_text(text, self.config_path), []
        except ConfigError as exc:
            return Config(), [str(p) for p in exc.problems]
        except UserError as exc:
            return Config(), [str(exc)]

    def overrides(self) -> dict[str, str]:
        return store.read_overrides(self.client)

    def running(self) -> tuple[Config, Config, dict[str, str], list[str]]:
        """(effective config, file config, overrides, problems of the file and overrides)."""
        file_cfg, problems = self.file_config()
        overrides = self.overrides()
        cfg, bad = live.apply_overrides(file_cfg, overrides)
        problems += [f"{p} (ignored by the workers)" for p in bad]
        return cfg, file_cfg, overrides, problems

    def snapshot(self) -> dict[str, Any]:
        """Every trigger with its state and settings (value, file value, default, override)."""
        cfg, file_cfg, overrides, problems = self.running()
        effective, from_file, defaults = (
            live.flatten(cfg),
            live.flatten(file_cfg),
            live.flatten(Config()),
        )
        triggers = []
        for name in cfg.triggers:
            prefix = f"triggers.{name}."
            settings = [
                {
                    "key": key[len(prefix) :],
                    "value": live.shown(value),
                    "file": live.shown(from_file.get(key)),
                    "default": live.shown(defaults.get(key)),
                    "override": overrides.get(key),
                }
                for key, value in effective.items()
                if key.startswith(prefix) and key[len(prefix) :] not in ("enabled", "shadow")
            ]
            triggers.append({"name": name, "state": state_of(cfg, name), "settings": settings})
        return {
            "config": self.config_path,
            "redis": redact_url(self.redis_url),
            "problems": problems,
            "triggers": triggers,
        }

    def history(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        prefix = f"triggers.{name}." if name else ""
        wanted = limit if not prefix else live.HISTORY_LIMIT
        entries = [
            e for e in store.read_history(self.client, wanted) if e["key"].startswith(prefix)
        ]
        return entries[:limit]

    # --- checking --------------------------------------------------------------------------

    def check_trigger(self, name: str) -> None:
        if name not in TRIGGER_TYPES:
            raise Rejected(f"no trigger named {name!r}", status=404)

    def pending_config(self, base: Config, changes: Mapping[str, str]) -> Config:
        """``base`` with ``changes`` (dotted key -> value as typed) applied; Rejected if invalid."""
        for dotted, value in changes.items():
            validate(dotted, value)
        cfg, problems = live.apply_overrides(base, changes)
        if problems:  # valid alone but not together cannot happen today; say it if it does
            raise Rejected(f"{problems[0]}; nothing changed", problems[0].key)
        return cfg

    # --- changing --------------------------------------------------------------------------

    def set(self, name: str, key: str, value: str, by: str) -> list[Change]:
        """``kairos triggers set NAME KEY VALUE``, by ``by``; [] when it already was so."""
        self.check_trigger(name)
        dotted = live.override_key(name, key)
        validate(dotted, value)
        if self.overrides().get(dotted) == value:
            return []
        return self._write({dotted: value}, by)

    def apply(self, changes: Mapping[str, str], by: str) -> list[Change]:
        """Several overrides at once (a previewed change), each validated as ``set`` does."""
        for dotted, value in changes.items():
            validate(dotted, value)
        overrides = self.overrides()
        wanted = {k: v for k, v in changes.items() if overrides.get(k) != v}
        return self._write(wanted, by) if wanted else []

    def switch(self, name: str, state: str, by: str) -> list[Change]:
        """On, off or shadow: only the switches whose effective value differs are written."""
        self.check_trigger(name)
        if state not in STATES:
            raise Rejected(f"state must be one of on, off, shadow; got {state!r}", "state")
        cfg, *_ = self.running()
        t = cfg.triggers[name]
        wanted = {"enabled": state != "off", "shadow": state == "shadow"}
        if state == "off":
            del wanted["shadow"]  # off keeps its shadow setting for when it comes back
        current = {"enabled": t.enabled, "shadow": t.shadow}
        changes = {
            live.override_key(name, k): "true" if v else "false"
            for k, v in wanted.items()
            if current[k] != v
        }
        return self._write(changes, by) if changes else []

    def reset(self, name: str, key: str | None, by: str) -> list[Change]:
        """``kairos triggers reset NAME [KEY]``: the file rules these settings again."""
        self.check_trigger(name)
        prefix = live.override_key(name, key) if key else f"triggers.{name}"
        overrides = self.overrides()
        gone = sorted(k for k in overrides if k == prefix or k.startswith(prefix + "."))
        if not gone:
            return []
        file_cfg, _ = self.file_config()
        before, _ = live.apply_overrides(file_cfg, overrides)
        after, _ = live.apply_overrides(
            file_cfg, {k: v for k, v in overrides.items() if k not in gone}
        )
        changes = [Change(k, _value(before, k), _value(after, k)) for k in gone]
        records = [live.history_entry(c.key, c.old, c.new, by, f"{SOURCE} reset") for c in changes]
        store.write_overrides(self.client, {}, gone, records)
        return changes

    def _write(self, wanted: Mapping[str, str], by: str) -> list[Change]:
        file_cfg, _ = self.file_config()
        overrides = self.overrides()
        before, _ = live.apply_overrides(file_cfg, overrides)
        after, _ = live.apply_overrides(file_cfg, {**overrides, **wanted})
        changes = [Change(k, _value(before, k), _value(after, k)) for k in sorted(wanted)]
        records = [live.history_entry(c.key, c.old, c.new, by, SOURCE) for c in changes]
        store.write_overrides(self.client, dict(wanted), [], records)
        return changes


def validate(dotted: str, value: str) -> None:
    """What ``kairos triggers set`` checks before it writes, with its message; Rejected if bad."""
    _, problems = live.apply_overrides(Config(), {dotted: value})
    if problems:
        hint = ""
        if value.lstrip().startswith(("{", "[")) and dotted.endswith(".template"):
            hint = " (quote text that starts with a brace: '\"{...}\"')"
        raise Rejected(f"{problems[0]}{hint}; nothing changed", dotted)
    try:
        check_duration(dotted, value)
    except UserError as exc:
        raise Rejected(str(exc), dotted) from None


def _value(cfg: Config, dotted: str) -> str:
    return live.shown(live.flatten(cfg).get(dotted))
