"""The PromQL of the Grafana dashboard and the alert rules, as plain strings.

Tests use it to check that every query parses (through ``promtool``) and names
only declared metrics; an end-to-end test can run the same strings against a
real Prometheus. Dashboard queries come back ready to run: Grafana's
built-in interval variables become fixed durations and template variables
become their "All" value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# What Grafana would substitute for its built-in variables, fixed so a query
# can run outside Grafana. 5m keeps rate() windows over several 15s scrapes.
GRAFANA_BUILTINS: dict[str, str] = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_METRIC_NAME = re.compile(r"\bkairos_[A-Za-z0-9_:]*")


def dashboard_panels(path: str | Path) -> list[dict[str, Any]]:
    """Every non-row panel of a dashboard, including those inside collapsed rows."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    return list(_walk_panels(dashboard.get("panels", [])))


def dashboard_queries(path: str | Path) -> list[str]:
    """Every PromQL expression of the dashboard, with Grafana variables substituted."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    variables = _template_defaults(dashboard)
    return [
        substitute_variables(target["expr"], variables)
        for panel in _walk_panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def alert_rules(path: str | Path) -> list[dict[str, Any]]:
    """Every alerting rule (``alert:`` entries) of a Prometheus rule file."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [
        rule
        for group in document.get("groups", [])
        for rule in group.get("rules", [])
        if "alert" in rule
    ]


def alert_expressions(path: str | Path) -> list[str]:
    """The PromQL expression of every alerting rule, as written in the file."""
    return [str(rule["expr"]).strip() for rule in alert_rules(path)]


def metric_names(expr: str) -> set[str]:
    """The ``kairos_*`` sample names an expression reads (``..._total``, ``..._bucket``)."""
    return set(_METRIC_NAME.findall(expr))


def substitute_variables(expr: str, variables: dict[str, str]) -> str:
    """Replace ``$var``/``${var}``/``${var:fmt}`` by Grafana built-ins or given values.

    An unknown variable raises ``KeyError``: a query that still holds one would
    fail or mislead when run outside Grafana.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name in variables:
            return variables[name]
        raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")

    return _VARIABLE.sub(replace, expr)


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _walk_panels(panel.get("panels", []))
        else:
            yield panel


def _template_defaults(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each template variable's value when "All" is selected (regex-safe ``.*``)."""
    return {
        variable["name"]: variable.get("allValue") or ".*"
        for variable in dashboard.get("templating", {}).get("list", [])
    }
