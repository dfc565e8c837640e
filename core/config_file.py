"""Read ``config/triggers.yaml`` into a :class:`Config`, reporting every problem by file and line.

The file overrides the defaults of :mod:`core.config` key by key: a file naming
only ``triggers.abandoned_cart.delay`` changes only that. The schema is the
dataclasses themselves: field names, annotations, and what :func:`core.config.duration`
and :func:`core.config.setting` add (durations, ranges, vocabularies); the
``triggers:`` section has one entry per registered trigger (``core.triggers``), each
with its declaration's config type. A few rules below cover what every such field
shares (channels, times of day, time zones, templates).

YAML 1.1 surprises are handled on purpose: keys are read as written (so
``on:`` stays ``"on"``, not ``True``), and a text field given an unquoted
number keeps the text (``start: 21:00`` is ``"21:00"``, not sexagesimal 1260).
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import Field, dataclass, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from core.config import CHANNELS, Config, Limit, QuietHours
from core.durations import format_duration, parse_duration
from core.segments_file import check as check_segments
from core.segments_file import read_section
from core.segments_file import to_plain as section_to_plain
from core.templates import template_fields, template_vars
from core.tiers import tier_problem
from core.triggers import TRIGGER_TYPES
from core.variants import OVERRIDABLE, Variant

T = TypeVar("T")

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_INVALID = object()

# Numbers without a declared limit (core.config.setting): 0 or more.
_WHOLE = Limit(lambda v: v >= 0, "a whole number of 0 or more")
_NUMBER = Limit(lambda v: v >= 0, "0 or more")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file, located by file, line and dotted key."""

    source: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source  # 0: not from a file
        return f"{where}: {self.key}: {self.message}"


class ConfigError(ValueError):
    """The file does not describe a valid configuration; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises :class:`ConfigError` listing every problem."""
    return parse_config(Path(path).read_text(encoding="utf-8"), str(path))


def parse_config(text: str, source: str, base: Config | None = None) -> Config:
    """Validate YAML ``text`` (named ``source`` in messages) and merge it over ``base``.

    ``base`` defaults to the documented defaults; live overrides pass the file's config.
    """
    base = Config() if base is None else base
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = exc.problem or exc.context or "unreadable"
        raise ConfigError([Problem(source, line, "(syntax)", f"invalid YAML: {reason}")]) from None
    finally:
        loader.dispose()
    if root is None or (root.tag == _NULL and isinstance(root, yaml.ScalarNode)):
        return base  # an empty or comments-only file keeps every default
    reader = _Reader(source)
    if not isinstance(root, yaml.MappingNode):
        sections = ", ".join(f.name for f in fields(Config))
        reader.problem(
            root, "(top level)", f"expected a mapping of sections ({sections}), got {_shown(root)}"
        )
        raise ConfigError(reader.problems)
    cfg = reader.dataclass(base, root, "", None)
    if not reader.problems:  # expressions, once every audience they may name is known
        for key, line, message in check_segments(cfg, reader.lines):
            reader.problems.append(Problem(source, line, key, message))
    if reader.problems:
        raise ConfigError(reader.problems)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The file form of a config (or any section of it): durations as ``30m``, tuples as lists."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        if f.metadata.get("section"):
            out[f.name] = section_to_plain(f.name, getattr(cfg, f.name))
            continue
        out[f.name] = _to_plain(getattr(cfg, f.name), bool(f.metadata.get("duration")))
    return out


def _to_plain(value: Any, is_duration: bool) -> Any:
    if isinstance(value, Variant):  # its overrides in their file form, weight first
        return {"weight": value.weight} | {
            k: _to_plain(v, k in ("delay", "valid_for")) for k, v in value.overrides.items()
        }
    if is_duration:
        return "0s" if value == 0 else format_duration(value)
    if is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, dict):
        return {k: _to_plain(v, False) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_plain(v, False) for v in value]  # a tuple of rules: each as a mapping
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _shown(node: yaml.Node) -> str:
    """How a value appears in messages: quoted text, bare numbers and booleans."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing" if node.value in ("", "~") else str(node.value)
    if node.tag == _STR:
        return repr(node.value)
    return str(node.value)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


class _Reader:
    """Walks the composed YAML nodes, converting values and collecting problems."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self.lines: dict[str, int] = {}  # dotted key of each text setting -> its line

    def problem(self, node: yaml.Node, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, node.start_mark.line + 1, key, message))

    def expected(self, node: yaml.Node, key: str, expectation: str) -> object:
        got = _shown(node)
        if node.tag == _BOOL:
            got += " (YAML reads yes/no/on/off/true/false as a boolean; quote it to mean text)"
        self.problem(node, key, f"expected {expectation}, got {got}")
        return _INVALID

    def entries(self, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The (name, key node, value node) pairs of a mapping; [] after reporting a non-mapping."""
        if not isinstance(node, yaml.MappingNode):
            self.expected(node, key or "(top level)", "a mapping of settings")
            return []
        try:
            self._constructor.flatten_mapping(node)  # supports `<<: *shared` merge keys
        except yaml.MarkedYAMLError as exc:
            self.problem(node, key, f"invalid merge key: {exc.problem}")
            return []
        seen: dict[str, int] = {}
        out = []
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self.problem(knode, key, f"expected a setting name, got {_shown(knode)}")
                continue
            name = str(knode.value)
            line = knode.start_mark.line + 1
            if name in seen:
                dotted = f"{key}.{name}" if key else name
                self.problem(knode, dotted, f"duplicate key, first given on line {seen[name]}")
            seen[name] = line
            out.append((name, knode, vnode))
        return out

    def unknown(self, knode: yaml.Node, key: str, what: str, valid: Iterable[str]) -> None:
        name = str(knode.value)
        hint = _suggest(name, valid) or "valid: " + ", ".join(valid)
        self.problem(knode, key, f"unknown {what}; {hint}")

    def dataclass(self, base: T, node: yaml.Node, path: str, trigger: str | None) -> T:
        """``base`` with the settings named in ``node`` replaced by their validated values."""
        cls: type[Any] = type(base)
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for name, knode, vnode in self.entries(node, path):
            key = f"{path}.{name}" if path else name
            f = known.get(name)
            if f is None:
                what = "section" if not path else "setting"
                self.unknown(knode, key, what, known)
                continue
            hint = _hints(cls)[name]  # type: ignore[arg-type]  # a class is Hashable
            if name == "variants" and trigger is not None:
                value: Any = self.variants(base, vnode, key, trigger)
            elif getattr(hint, "__origin__", None) is dict:
                value = self.triggers(getattr(base, name), vnode, key)
            elif f.metadata.get("section"):  # audiences, tags, scores: core.segments_file
                value = read_section(self, name, getattr(base, name), vnode, key)
                value = _INVALID if value is None else value
            elif is_dataclass(hint):
                value = self.dataclass(getattr(base, name), vnode, key, trigger)
            elif f.metadata.get("duration"):
                value = self.duration(vnode, key)
                if value == 0 and f.metadata.get("positive"):
                    value = self.expected(vnode, key, "a duration above 0 like 7d")
            else:
                value = self.typed(cls, f, hint, vnode, key, trigger)
            if value is not _INVALID:
                changes[name] = value
        return replace(base, **changes)  # type: ignore[type-var]

    def triggers(self, base: dict[str, Any], node: yaml.Node, path: str) -> dict[str, Any]:
        merged = dict(base)
        for name, knode, vnode in self.entries(node, path):
            key = f"{path}.{name}"
            if name not in TRIGGER_TYPES:
                self.unknown(knode, key, "trigger", TRIGGER_TYPES)
                continue
            current = merged.get(name) or TRIGGER_TYPES[name]()
            merged[name] = self.dataclass(current, vnode, key, name)
        return merged

    def variants(self, tcfg: Any, node: yaml.Node, path: str, trigger: str) -> object:
        """A trigger's ``variants:``: name -> ``weight`` and overrides of its own settings.

        Each override is validated as the trigger's own setting would be (a variant's
        template may use the trigger's variables, its channel must be a channel...).
        """
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return {}  # `variants:` left empty: none
        entries = self.entries(node, path)
        if not isinstance(node, yaml.MappingNode):
            return _INVALID
        before = len(self.problems)
        allowed = [name for name in OVERRIDABLE if name in {f.name for f in fields(tcfg)}]
        out: dict[str, Variant] = {}
        for name, knode, vnode in entries:
            key = f"{path}.{name}"
            if not name.isidentifier():
                self.problem(knode, key, "a variant's name must be a word of letters, digits and _")
                continue
            weight, settings = 1.0, []
            for setting_name, sknode, svnode in self.entries(vnode, key):
                skey = f"{key}.{setting_name}"
                if setting_name == "weight":
                    given = self.scalar(svnode, skey)
                    ok = isinstance(given, int | float) and not isinstance(given, bool)
                    if not ok or not given > 0:
                        self.expected(svnode, skey, "a weight above 0, like 1 or 0.5")
                    else:
                        weight = float(given)
                elif setting_name in allowed:
                    settings.append((sknode, svnode))
                else:
                    valid = ["weight", *allowed]
                    self.unknown(sknode, skey, f"variant setting of {trigger}", valid)
            overrides = yaml.MappingNode("tag:yaml.org,2002:map", settings)
            parsed = self.dataclass(tcfg, overrides, key, trigger)
            out[name] = Variant(weight, {k.value: getattr(parsed, k.value) for k, _ in settings})
        if len(self.problems) == before and len(out) == 1:
            self.problem(
                node, path, "expected two or more variants to compare (or {} for none), got one"
            )
        return out if len(self.problems) == before else _INVALID

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return _INVALID
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problem(node, key, f"unreadable value: {exc.problem}")
            return _INVALID

    def duration(self, node: yaml.Node, key: str) -> object:
        value = self.scalar(node, key)
        if value is _INVALID or value is None or isinstance(value, bool):
            return self.expected(node, key, "a duration like 30m, 2h or 7d")
        if isinstance(value, int | float) and not value <= 0:  # `delay: 30`: 30 what?
            return self.expected(node, key, "a duration with a unit like 30s, 30m or 30d")
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(node, key, str(exc))
            return _INVALID

    def typed(
        self, cls: type, f: Field[Any], hint: Any, node: yaml.Node, key: str, trigger: str | None
    ) -> object:
        if hint is bool:
            value = self.scalar(node, key)
            return value if isinstance(value, bool) else self.expected(node, key, "true or false")
        if hint is int or hint is float:
            return self.number(f, hint, node, key)
        if hint is str:
            return self.text(cls, f, node, key, trigger)
        if hint == tuple[str, ...]:
            return self.text_list(f.name, node, key)
        raise TypeError(f"{cls.__name__}.{f.name}: no file form for {hint!r}")  # a schema bug

    def number(self, f: Field[Any], hint: type, node: yaml.Node, key: str) -> object:
        value = self.scalar(node, key)
        whole = hint is int
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or value is _INVALID:
            return self.expected(node, key, "a whole number" if whole else "a number")
        limit: Limit = f.metadata.get("limit") or (_WHOLE if whole else _NUMBER)
        if not limit.check(value):
            return self.expected(node, key, limit.expected)
        return value if whole else float(value)

    def text(
        self, cls: type, f: Field[Any], node: yaml.Node, key: str, trigger: str | None
    ) -> object:
        if not _is_text(node):
            return self.expected(node, key, "text")
        value = str(node.value)  # as written: `21:00` stays text, not sexagesimal 1260
        self.lines[key] = node.start_mark.line + 1
        message = _text_problem(cls, f.name, value, trigger, f.metadata.get("choices", ()))
        if message:
            self.problem(node, key, message)
            return _INVALID
        return value

    def text_list(self, name: str, node: yaml.Node, key: str) -> object:
        if not isinstance(node, yaml.SequenceNode):
            return self.expected(node, key, "a list like [slack, webhook]")
        self.lines[key] = node.start_mark.line + 1
        items: list[str] = []
        for i, item in enumerate(node.value):
            if not _is_text(item):
                self.expected(item, f"{key}[{i}]", "text")
                continue
            message = _text_problem(None, name, str(item.value), None, ())
            if message:
                self.problem(item, f"{key}[{i}]", message)
                continue
            items.append(str(item.value))
        return tuple(items) if len(items) == len(node.value) else _INVALID


def _is_text(node: yaml.Node) -> bool:
    """A scalar usable as text: strings, and numbers kept as written; not booleans or nulls."""
    return (
        isinstance(node, yaml.ScalarNode)
        and node.tag.startswith("tag:yaml.org,2002:")
        and node.tag not in (_BOOL, _NULL)
    )


def _text_problem(
    cls: type | None, name: str, value: str, trigger: str | None, choices: tuple[str, ...]
) -> str:
    """Why a text value is wrong for its field (``choices``: its vocabulary, if any), or ``""``."""
    if choices and value not in choices:
        return f"expected one of {', '.join(choices)}, got {value!r}"
    if name in ("channel", "cap_exempt_channels") and value not in CHANNELS:
        hint = _suggest(value, CHANNELS)
        extra = f"; {hint}" if hint else ""
        return f"expected a channel ({', '.join(CHANNELS)}), got {value!r}{extra}"
    if cls is QuietHours and name in ("start", "end") and not _HHMM.fullmatch(value):
        return f"expected a time of day as HH:MM like 21:00, got {value!r}"
    if name == "default_timezone":
        return _timezone_problem(value)
    if name == "tiers":  # membership tiers, name:threshold
        return tier_problem(value)
    if name == "send_at" and not _HHMM.fullmatch(value):  # birthday's local send time
        return f"expected a time of day as HH:MM like 10:00, got {value!r}"
    if name == "template" and trigger is not None:
        return _template_problem(value, trigger)
    return ""


def _timezone_problem(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
        return ""
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = _suggest(value, zoneinfo.available_timezones())
        extra = f"; {hint}" if hint else ""
        return f"expected an IANA timezone like Europe/Berlin or UTC, got {value!r}{extra}"


def _template_problem(template: str, trigger: str) -> str:
    try:
        used = template_fields(template)
    except ValueError as exc:
        return str(exc)
    available = template_vars(trigger)
    unknown = sorted(used - available)
    if not unknown:
        return ""
    first = unknown[0]
    close = difflib.get_close_matches(first, sorted(available), n=1)
    hint = f" (did you mean {{{close[0]}}}?)" if close else ""
    names = ", ".join(sorted(available))
    got = ", ".join(f"{{{u}}}" for u in unknown)
    return f"expected template variables of {trigger} ({names}), got {got}{hint}"
