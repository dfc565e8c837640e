"""``kairos triggers``: validate the campaign file, and list, switch and tune triggers live.

A change made here is stored as a live override in Redis, recorded in the history
and announced to every running worker, which uses it within about a second; an edit
of the file reaches them the same way. See ``state/overrides.py`` for the design.
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import os
import re
import sys
from datetime import UTC, datetime

import redis

from core.config import Config
from core.config_file import ConfigError
from core.triggers import TRIGGER_TYPES
from kairos import arguments, inputs
from kairos.errors import UserError
from state import override_store as store
from state import overrides as live
from stream.security import redact_url, redis_kwargs

DEFAULT_CONFIG = inputs.DEFAULT_CONFIG
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
_DURATION = re.compile(r"[0-9]+(ms|s|m|h|d|w)")

RULES = """\
Live overrides win over the file until `kairos triggers reset NAME [KEY]`.
Values are written as in the file: durations 90s, 30m, 2h, 7d; true/false; quote text
with braces, e.g. set abandoned_cart template '"{item_count} item(s) left"'.
Switching a trigger off: it arms no new timers and makes no decisions, and its pending
timers are dropped when they come due while it is off. Switching it on again does not
fire on history: only events from then on count.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = RULES
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", help=f"campaign config file (default: $KAIROS_CONFIG or {DEFAULT_CONFIG})"
    )
    common.add_argument("--redis", help=f"Redis URL (default: $REDIS_URL or {DEFAULT_REDIS})")
    common.add_argument("--by", help="who makes the change, for the history (default: $USER)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=RULES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("validate", "check a config file; print every problem, exit 1 if any")
    p.add_argument("file", nargs="?", help="default: --config")
    p = add("list", "the effective config (file + live overrides) and which triggers are on")
    p.add_argument("name", nargs="?", help="only this trigger (or journey, engine, policy)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("enable", "switch a trigger on, live")
    p.add_argument("name")
    p = add("disable", "switch a trigger off, live (pending timers are dropped when due)")
    p.add_argument("name")
    p = add("set", "change one setting live, e.g. `set abandoned_cart delay 45m`")
    p.add_argument("name", help="a trigger, or journey, engine, policy")
    p.add_argument("key", help="a setting, dotted for nested ones (quiet_hours.enabled)")
    p.add_argument("value", help="as it would be written in the file")
    p = add("reset", "remove live overrides so the file rules again")
    p.add_argument("name")
    p.add_argument("key", nargs="?", help="only this setting (default: all of NAME's)")
    p = add("history", "who changed what and when, newest first")
    p.add_argument("name", nargs="?", help="only changes of this trigger or section")
    p.add_argument("--limit", type=arguments.count(1, live.HISTORY_LIMIT), default=20)
    p.add_argument("--json", action="store_true", help="one JSON record per line")


def run(args: argparse.Namespace) -> int:
    command = {
        "validate": _validate,
        "list": _list,
        "enable": _enable,
        "disable": _disable,
        "set": _set,
        "reset": _reset,
        "history": _history,
    }[args.action]
    if args.action in ("reset", "history") and args.name:  # the others say it themselves
        _check_name(args.name)
    try:
        return command(args)
    except redis.RedisError as exc:
        where = inputs.redis_url(args.redis, DEFAULT_REDIS)
        raise UserError(f"cannot reach Redis at {where}: {exc}; nothing changed", 1) from None


# --- commands -------------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    path = args.file or _config_path(args)
    text = inputs.config_text(path)
    if text is None:
        raise UserError(f"{path}: no such config file; check the path", 1)
    try:
        cfg = inputs.parse_config_text(text, path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    on = sum(t.enabled for t in cfg.triggers.values())
    print(f"{path}: valid ({len(cfg.triggers)} triggers, {on} on)")
    return 0


def _list(args: argparse.Namespace) -> int:
    path = _config_path(args)
    file_cfg = _file_config(args)
    try:
        overrides = store.read_overrides(_client(args))
        where = f"{len(overrides)} live override(s) from {redact_url(_redis_url(args))}"
    except redis.RedisError as exc:
        overrides = {}
        url = redact_url(_redis_url(args))
        where = f"live overrides unknown: Redis at {url} unavailable ({exc})"
        print(f"warning: {where}", file=sys.stderr)
    cfg, problems = live.apply_overrides(file_cfg, overrides)
    for problem in problems:
        print(f"warning: {problem} (ignored by the workers)", file=sys.stderr)
    effective, from_file = live.flatten(cfg), live.flatten(file_cfg)
    prefix = _prefix(args.name) if args.name else ""
    if args.name and not any(k.startswith(prefix) for k in effective):
        print(f"error: no trigger or section named {args.name!r}", file=sys.stderr)
        return 1
    if args.json:
        out = {
            "config": path,
            "triggers": {
                name: {"on": t.enabled, "shadow": t.shadow} for name, t in cfg.triggers.items()
            },
            "settings": {k: v for k, v in effective.items() if k.startswith(prefix)},
            "overrides": {k: v for k, v in overrides.items() if k.startswith(prefix)},
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"# {path} + {where}")
    counts = _counts(cfg)
    print(f"# {len(cfg.triggers)} triggers: {counts}")
    current = ""
    for key, value in effective.items():
        if not key.startswith(prefix):
            continue
        head, _, rest = key.rpartition(".")
        if head != current:
            current = head
            status = _status_comment(cfg, head)
            print(f"\n{head}:{status}")
        note = ""
        if key in overrides:
            note = f"  # live override (file: {live.shown(from_file.get(key))})"
        print(f"  {rest}: {live.shown(value)}{note}")
    return 0


def _enable(args: argparse.Namespace) -> int:
    return _change(args, args.name, "enabled", "true")


def _disable(args: argparse.Namespace) -> int:
    return _change(args, args.name, "enabled", "false")


def _set(args: argparse.Namespace) -> int:
    return _change(args, args.name, args.key, args.value)


def _change(args: argparse.Namespace, name: str, key: str, value: str) -> int:
    dotted = live.override_key(name, key)
    _, problems = live.apply_overrides(Config(), {dotted: value})
    if problems:
        hint = ""
        if value.lstrip().startswith(("{", "[")) and key == "template":
            hint = " (quote text that starts with a brace: '\"{...}\"')"
        raise UserError(f"{problems[0]}{hint}; nothing changed", 1)
    check_duration(dotted, value)
    client = _client(args)
    overrides = store.read_overrides(client)
    if overrides.get(dotted) == value:
        print(f"{dotted}: already {value} (live override); nothing changed")
        return 0
    file_cfg = _file_config(args)
    before, _ = live.apply_overrides(file_cfg, overrides)
    after, _ = live.apply_overrides(file_cfg, {**overrides, dotted: value})
    old, new = _value(before, dotted), _value(after, dotted)
    record = live.history_entry(dotted, old, new, _by(args), "cli")
    store.write_overrides(client, {dotted: value}, [], [record])
    print(f"{dotted}: {old} -> {new} (live override; every worker within 2s)")
    return 0


def _reset(args: argparse.Namespace) -> int:
    if args.key:
        dotted = live.override_key(args.name, args.key)
        if not any(k == dotted or k.startswith(dotted + ".") for k in live.flatten(Config())):
            raise UserError(f"{args.name} has no setting {args.key!r}; nothing changed", 1)
        prefix = dotted + "."
    else:
        prefix = _prefix(args.name)
        dotted = prefix.rstrip(".")
    client = _client(args)
    overrides = store.read_overrides(client)
    gone = sorted(k for k in overrides if k == dotted or k.startswith(prefix))
    if not gone:
        print(f"no live overrides for {dotted}; nothing changed")
        return 0
    file_cfg = _file_config(args)
    before, _ = live.apply_overrides(file_cfg, overrides)
    after, _ = live.apply_overrides(file_cfg, {k: v for k, v in overrides.items() if k not in gone})
    by = _by(args)
    records = []
    for key in gone:
        old, new = _value(before, key), _value(after, key)
        records.append(live.history_entry(key, old, new, by, "cli reset"))
        print(f"{key}: {old} -> {new} (override removed; the file rules)")
    store.write_overrides(client, {}, gone, records)
    return 0


def _history(args: argparse.Namespace) -> int:
    client = _client(args)
    prefix = _prefix(args.name) if args.name else ""
    wanted = args.limit if not prefix else live.HISTORY_LIMIT
    entries = [e for e in store.read_history(client, wanted) if e["key"].startswith(prefix)]
    for entry in entries[: args.limit]:
        if args.json:
            print(json.dumps(entry, sort_keys=True))
            continue
        at = datetime.fromtimestamp(entry["at"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        print(
            f"{at}  {entry['by']:<12} {entry['source']:<9} "
            f"{entry['key']}: {entry['old']} -> {entry['new']}"
        )
    if not entries and not args.json:
        print("no changes recorded")
    return 0


# --- helpers --------------------------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> str:
    return inputs.config_path(args.config)[0]


def _redis_url(args: argparse.Namespace) -> str:
    return inputs.redis_url(args.redis, DEFAULT_REDIS).value


def _check_name(name: str) -> None:
    """A trigger or section the config has: anything else is a typo, said at once."""
    if name in live.SECTIONS or name in TRIGGER_TYPES:
        return
    close = difflib.get_close_matches(name, [*TRIGGER_TYPES, *live.SECTIONS], n=1)
    hint = f"did you mean {close[0]!r}?" if close else "see `kairos triggers list`"
    raise UserError(f"no trigger or section named {name!r}; {hint}", 1)


def check_duration(dotted: str, value: str) -> None:
    """A duration setting beyond ten years is a typo (99999d), not a campaign."""
    default = live.flatten(Config()).get(dotted)
    if not (isinstance(default, str) and _DURATION.fullmatch(default)):
        return
    try:
        arguments.duration(value)
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"{dotted}: {exc}; nothing changed", 1) from None


def _client(args: argparse.Namespace) -> redis.Redis:
    url = _redis_url(args)
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, **redis_kwargs(url)
    )


def _by(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # no user name in this environment (e.g. a bare container)
        return "unknown"


def _file_config(args: argparse.Namespace) -> Config:
    """The file's config; the defaults, with a warning, when it does not validate.

    A file named by --config or $KAIROS_CONFIG must exist; a missing default one means
    the defaults, as it does for the workers.
    """
    path, source = inputs.config_path(args.config)
    text = inputs.config_text(path)
    if text is None:
        if source != "the default":
            raise UserError(f"{path}: no such config file (from {source}); check the path", 1)
        print(f"warning: {path} not found; showing the defaults", file=sys.stderr)
        return Config()
    try:
        return inputs.parse_config_text(text, path)
    except ConfigError as exc:
        print(
            f"warning: {path} has {len(exc.problems)} problem(s) (see `kairos triggers "
            "validate`); workers keep their last valid version; showing the defaults",
            file=sys.stderr,
        )
        return Config()


def _prefix(name: str) -> str:
    return f"{name}." if name in live.SECTIONS else f"triggers.{name}."


def _value(cfg: Config, dotted: str) -> str:
    flat = live.flatten(cfg)
    if dotted in flat:
        return live.shown(flat[dotted])
    # A mapping set whole (a trigger's variants): its settings, by their keys inside it.
    inner = {k[len(dotted) + 1 :]: v for k, v in flat.items() if k.startswith(dotted + ".")}
    return live.shown(inner or None)


def _counts(cfg: Config) -> str:
    on = sum(t.enabled and not t.shadow for t in cfg.triggers.values())
    shadow = sum(t.enabled and t.shadow for t in cfg.triggers.values())
    off = sum(not t.enabled for t in cfg.triggers.values())
    return f"{on} on, {shadow} in shadow mode, {off} off"


def _status_comment(cfg: Config, head: str) -> str:
    _, _, name = head.partition(".")
    if not head.startswith("triggers.") or name not in TRIGGER_TYPES:
        return ""
    t = cfg.triggers[name]
    status = "off" if not t.enabled else "shadow (decides, never sends)" if t.shadow else "on"
    return f"  # {status}"
