"""Read the ``audiences:``, ``tags:`` and ``scores:`` sections of a config file.

Called by ``core.config_file``'s reader for the fields of ``Config`` marked as sections,
with the reader itself (``_Reader``: its ``problem``, ``entries``, ``scalar``,
``duration`` and ``dataclass``), so every message has the file's form: file:line, the
dotted key, what was expected. Expressions are checked afterwards, on the whole config
(``check``): an audience may be defined below the trigger that names it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml

from core import segments
from core.audience_expr import BUILT_IN_NAMES
from core.durations import format_duration
from core.model import TOPIC_TYPES
from core.segments_config import (
    AudienceDef,
    FitRule,
    LeadConfig,
    PointRule,
    RfmConfig,
    ScoresConfig,
    TagRule,
)

EVENT_TYPES = frozenset().union(*TOPIC_TYPES.values())
_STR = "tag:yaml.org,2002:str"
_INVALID = None  # what a reader method returns after reporting a problem


def read_section(reader: Any, name: str, base: Any, node: yaml.Node, key: str) -> Any:
    """The section ``name`` read from ``node``; ``None`` after reporting its problems."""
    if name == "audiences":
        return _audiences(reader, node, key)
    if name == "tags":
        return _tags(reader, node, key)
    return _scores(reader, base, node, key)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _text(reader: Any, node: yaml.Node, key: str, what: str) -> str | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR or not str(node.value).strip():
        reader.expected(node, key, what)
        return None
    return str(node.value)


def _name_problem(name: str) -> str:
    if not name.isidentifier():
        return "a name must be a word of letters, digits and _"
    if name in BUILT_IN_NAMES:
        return f"{name!r} is a built-in name of the expression language; choose another"
    return ""


def _audiences(reader: Any, node: yaml.Node, key: str) -> tuple[AudienceDef, ...] | None:
    out: list[AudienceDef] = []
    for name, knode, vnode in reader.entries(node, key):
        dotted = f"{key}.{name}"
        problem = _name_problem(name)
        if problem:
            reader.problem(knode, dotted, problem)
            continue
        expr = _text(reader, vnode, dotted, 'an expression in quotes, like "revenue >= 500"')
        if expr is not None:
            out.append(AudienceDef(name, expr, _line(vnode)))
    return tuple(out) if len(out) == len(getattr(node, "value", ())) else _INVALID


def _tags(reader: Any, node: yaml.Node, key: str) -> tuple[TagRule, ...] | None:
    out: list[TagRule] = []
    entries = reader.entries(node, key)
    for name, knode, vnode in entries:
        dotted = f"{key}.{name}"
        if not name.replace("-", "_").isidentifier():
            reader.problem(knode, dotted, "a tag must be a word of letters, digits, - and _")
            continue
        if isinstance(vnode, yaml.ScalarNode):  # `vip: "revenue >= 1000"`: set, never cleared
            expr = _text(reader, vnode, dotted, "an expression, or a mapping with set and clear")
            if expr is not None:
                out.append(TagRule(name, expr, "", _line(vnode)))
            continue
        rule: dict[str, str] = {}
        for part, pknode, pnode in reader.entries(vnode, dotted):
            if part not in ("set", "clear"):
                reader.unknown(pknode, f"{dotted}.{part}", "setting", ("set", "clear"))
                continue
            expr = _text(reader, pnode, f"{dotted}.{part}", "an expression in quotes")
            if expr is not None:
                rule[part] = expr
        if "set" not in rule:
            reader.problem(vnode, dotted, "a tag rule needs 'set' (when to set the tag)")
            continue
        out.append(TagRule(name, rule["set"], rule.get("clear", ""), _line(vnode)))
    return tuple(out) if len(out) == len(entries) else _INVALID


def _scores(reader: Any, base: ScoresConfig, node: yaml.Node, key: str) -> ScoresConfig | None:
    changes: dict[str, Any] = {}
    ok = True
    for name, knode, vnode in reader.entries(node, key):
        dotted = f"{key}.{name}"
        if name == "rfm":
            rfm = _rfm(reader, base.rfm, vnode, dotted)
            ok = ok and rfm is not None
            changes[name] = rfm
        elif name == "clv":
            changes[name] = reader.dataclass(base.clv, vnode, dotted, None)
        elif name == "lead":
            lead = _lead(reader, base.lead, vnode, dotted)
            ok = ok and lead is not None
            changes[name] = lead
        else:
            reader.unknown(knode, dotted, "section", ("rfm", "clv", "lead"))
    if not ok:
        return _INVALID
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def _rfm(reader: Any, base: RfmConfig, node: yaml.Node, key: str) -> RfmConfig | None:
    changes: dict[str, tuple[float, ...]] = {}
    for name, knode, vnode in reader.entries(node, key):
        dotted = f"{key}.{name}"
        if name not in ("recency_days", "frequency", "monetary"):
            reader.unknown(knode, dotted, "setting", ("recency_days", "frequency", "monetary"))
            continue
        edges = _numbers(reader, vnode, dotted)
        if edges is not None:
            changes[name] = edges
    return replace(base, **changes)


def _numbers(reader: Any, node: yaml.Node, key: str) -> tuple[float, ...] | None:
    expectation = "four ascending numbers, the edges between levels 1-5, like [2, 3, 5, 8]"
    if not isinstance(node, yaml.SequenceNode) or len(node.value) != 4:
        reader.expected(node, key, expectation)
        return None
    values = [reader.scalar(item, key) for item in node.value]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != 4 or any(v < 0 for v in numbers) or numbers != sorted(numbers):
        reader.expected(node, key, expectation)
        return None
    return tuple(float(v) for v in numbers)


def _number(reader: Any, node: yaml.Node, key: str, what: str = "a number of 0 or more") -> Any:
    value = reader.scalar(node, key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        reader.expected(node, key, what)
        return None
    return float(value)


def _lead(reader: Any, base: LeadConfig, node: yaml.Node, key: str) -> LeadConfig | None:
    changes: dict[str, Any] = {}
    fields = ("points", "fit", "half_life", "mql", "requalify_below")
    ok = True
    for name, knode, vnode in reader.entries(node, key):
        dotted = f"{key}.{name}"
        value: Any
        if name == "points":
            value = _rules(reader, vnode, dotted, _point_rule)
        elif name == "fit":
            value = _rules(reader, vnode, dotted, _fit_rule)
        elif name == "half_life":
            value = reader.duration(vnode, dotted)
            value = None if value is None or not isinstance(value, int) else value
        elif name in ("mql", "requalify_below"):
            value = _number(reader, vnode, dotted)
        else:
            reader.unknown(knode, dotted, "setting", fields)
            continue
        if value is None:
            ok = False
        else:
            changes[name] = value
    if not ok:
        return _INVALID
    lead = replace(base, **changes)
    if lead.requalify_below >= lead.mql:
        reader.problem(
            node,
            f"{key}.requalify_below",
            f"expected less than mql ({lead.mql:g}), got {lead.requalify_below:g}",
        )
        return _INVALID
    if lead.half_life <= 0:
        reader.problem(node, f"{key}.half_life", "expected a half-life longer than 0")
        return _INVALID
    return lead


def _rules(reader: Any, node: yaml.Node, key: str, one: Any) -> tuple[Any, ...] | None:
    if not isinstance(node, yaml.SequenceNode):
        reader.expected(node, key, "a list of rules")
        return None
    out = [one(reader, item, f"{key}[{i}]") for i, item in enumerate(node.value)]
    return None if any(rule is None for rule in out) else tuple(out)


def _point_rule(reader: Any, node: yaml.Node, key: str) -> PointRule | None:
    got: dict[str, Any] = {}
    for name, knode, vnode in reader.entries(node, key):
        dotted = f"{key}.{name}"
        if name == "on":
            etype = _text(reader, vnode, dotted, "an event type like page_view")
            if etype is not None and etype not in EVENT_TYPES:
                from difflib import get_close_matches

                close = get_close_matches(etype, sorted(EVENT_TYPES), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                reader.problem(vnode, dotted, f"unknown event type {etype!r}{hint}")
                etype = None
            got[name] = etype
        elif name == "url":
            got[name] = _text(reader, vnode, dotted, "text a page's url contains, like /pricing")
        elif name == "points":
            got[name] = _number(reader, vnode, dotted)
        else:
            reader.unknown(knode, dotted, "setting", ("on", "url", "points"))
            got[name] = None
    if None in got.values():
        return None
    for needed in ("on", "points"):
        if needed not in got:
            reader.problem(node, key, f"a points rule needs '{needed}'")
            return None
    return PointRule(got["on"], got["points"], got.get("url", ""), _line(node))


def _fit_rule(reader: Any, node: yaml.Node, key: str) -> FitRule | None:
    got: dict[str, Any] = {}
    for name, knode, vnode in reader.entries(node, key):
        dotted = f"{key}.{name}"
        if name == "when":
            got[name] = _text(reader, vnode, dotted, "an expression in quotes")
        elif name == "points":
            got[name] = _number(reader, vnode, dotted)
        else:
            reader.unknown(knode, dotted, "setting", ("when", "points"))
            got[name] = None
    if None in got.values():
        return None
    for needed in ("when", "points"):
        if needed not in got:
            reader.problem(node, key, f"a fit rule needs '{needed}'")
            return None
    return FitRule(got["when"], got["points"], _line(node))


def to_plain(name: str, value: Any) -> Any:
    """A section in its file form (``core.config_file.config_to_dict``)."""
    if name == "audiences":
        return {a.name: a.expr for a in value}
    if name == "tags":
        return {t.name: {"set": t.set, "clear": t.clear} if t.clear else t.set for t in value}
    lead = value.lead
    return {
        "rfm": {
            "recency_days": list(value.rfm.recency_days),
            "frequency": list(value.rfm.frequency),
            "monetary": list(value.rfm.monetary),
        },
        "clv": {
            "lifespan_years": value.clv.lifespan_years,
            "cost_per_order": value.clv.cost_per_order,
            "min_tenure": format_duration(value.clv.min_tenure),
        },
        "lead": {
            "points": [
                {"on": p.on, "points": p.points, **({"url": p.url} if p.url else {})}
                for p in lead.points
            ],
            "fit": [{"when": f.when, "points": f.points} for f in lead.fit],
            "half_life": format_duration(lead.half_life),
            "mql": lead.mql,
            "requalify_below": lead.requalify_below,
        },
    }


def check(cfg: Any, lines: dict[str, int]) -> list[tuple[str, int, str]]:
    """Every expression of the config compiled: ``(key, line, message)`` per problem.

    ``lines`` maps dotted keys of text settings to their lines (a trigger's ``audience``).
    """
    compiled = segments.compile_config(cfg)
    return [(i.key, i.line or lines.get(i.key, 0), i.message) for i in compiled.issues]
