"""The monitoring files are valid, tested, and speak only of declared metrics.

promtool checks the Prometheus config and the alert rules, runs the alert
unit tests (monitoring/alerts_test.yml) and parses every dashboard query; the
rest reads the files and compares metric and label names with
monitoring/metrics.py, the one place metrics are declared.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from monitoring import metrics
from monitoring.loop_metrics import LoopMetric
from monitoring.promql import (
    alert_expressions,
    alert_rules,
    dashboard_panels,
    dashboard_queries,
    metric_names,
)

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
ALERTS = MONITORING / "alerts.yml"
ALERTS_TEST = MONITORING / "alerts_test.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "kairos.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"

# Sample names each metric type exposes, after the declared (base) name.
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}
# Labels Prometheus or the histogram add to every declared label set.
IMPLICIT_LABELS = {"job", "instance", "le"}


def _declared() -> dict[str, set[str]]:
    """Sample name -> label names, for every collector in monitoring/metrics.py."""
    samples: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase | LoopMetric):
            continue
        # prometheus_client keeps label names privately; there is no public accessor.
        labels = set(collector._labelnames)
        for family in collector.describe():
            for suffix in SAMPLE_SUFFIXES[family.type]:
                samples[family.name + suffix] = labels
    return samples


DECLARED = _declared()


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    return subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def _assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


# --- promtool ---------------------------------------------------------------


def test_prometheus_config_is_valid_and_loads_the_alert_rules() -> None:
    result = _promtool("check", "config", "monitoring/prometheus.yml")
    _assert_ok(result)
    assert "1 rule files found" in result.stdout + result.stderr


def test_alert_rules_are_valid() -> None:
    _assert_ok(_promtool("check", "rules", "monitoring/alerts.yml"))


def test_alert_unit_tests_pass() -> None:
    _assert_ok(_promtool("test", "rules", "monitoring/alerts_test.yml"))


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool has no offline "parse this expression", but it parses the
    # expression of every recording rule it checks.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, expr in enumerate(dashboard_queries(DASHBOARD))
    ]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _assert_ok(_promtool("check", "rules", str(rule_file)))


# --- metric and label names ---------------------------------------------------


def test_metrics_module_declares_metrics() -> None:
    assert "kairos_events_consumed_total" in DECLARED
    assert "kairos_timer_lateness_seconds_bucket" in DECLARED
    assert "kairos_events_consumed" not in DECLARED  # counters are read as *_total


@pytest.mark.parametrize(
    ("source", "expressions"),
    [
        ("dashboard", dashboard_queries(DASHBOARD)),
        ("alerts.yml", alert_expressions(ALERTS)),
    ],
)
def test_every_kairos_metric_used_is_declared(source: str, expressions: list[str]) -> None:
    used = set().union(*(metric_names(expr) for expr in expressions))
    assert used, f"{source} uses no kairos_* metric"
    undeclared = sorted(used - DECLARED.keys())
    assert not undeclared, (
        f"{source} uses metrics not declared in monitoring/metrics.py: {undeclared}"
    )


_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")


@pytest.mark.parametrize(
    ("source", "expressions"),
    [
        ("dashboard", dashboard_queries(DASHBOARD)),
        ("alerts.yml", alert_expressions(ALERTS)),
    ],
)
def test_every_label_used_with_a_kairos_metric_is_declared(
    source: str, expressions: list[str]
) -> None:
    problems = []
    for expr in expressions:
        names = metric_names(expr) & DECLARED.keys()
        if not names:
            continue  # e.g. up{job=...}: Prometheus' own labels
        allowed = IMPLICIT_LABELS.union(*(DECLARED[name] for name in names))
        used = {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",")}
        used |= set(_MATCHER.findall(expr))
        used.discard("")
        if unknown := used - allowed:
            problems.append(f"{sorted(unknown)} in {expr}")
    assert not problems, f"{source} uses undeclared labels:\n" + "\n".join(problems)


# --- alerts ---------------------------------------------------------------------


def test_every_alert_has_severity_summary_description_and_one_line_runbook() -> None:
    rules = alert_rules(ALERTS)
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name} has no {key}"
        assert "\n" not in annotations["runbook"].strip(), f"{name}: runbook must be one line"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    stays_quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    names = {rule["alert"] for rule in alert_rules(ALERTS)}
    assert not names - fires, f"no test where these fire: {sorted(names - fires)}"
    assert not names - stays_quiet, f"no test where these stay quiet: {sorted(names - stays_quiet)}"


# --- dashboard and provisioning -------------------------------------------------


def test_every_dashboard_panel_has_a_promql_target() -> None:
    panels = dashboard_panels(DASHBOARD)
    assert len(panels) >= 20
    for panel in panels:
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no target"
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"panel {panel['title']!r}: empty expr"


def test_dashboard_uses_the_provisioned_datasource_uid() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert "DS_PROMETHEUS" not in DASHBOARD.read_text()
    assert 36 <= dashboard["schemaVersion"] <= 41
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert [source["uid"] for source in provisioned] == ["prometheus"]
    ids = [panel["id"] for panel in dashboard_panels(DASHBOARD)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard_panels(DASHBOARD):
        for owner in (panel, *panel["targets"]):
            assert owner["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel[
                "title"
            ]


# --- compose wiring --------------------------------------------------------------


def test_compose_mounts_exist_and_prometheus_scrapes_the_compose_services() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"

    scrape = {
        job["job_name"]: job
        for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    worker_sd = scrape["kairos-worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"]
    assert str(worker_sd["port"]) == services["worker"]["environment"]["KAIROS_METRICS_PORT"]
    (dispatcher_target,) = scrape["kairos-dispatcher"]["static_configs"][0]["targets"]
    port = services["dispatcher"]["environment"]["KAIROS_METRICS_PORT"]
    assert dispatcher_target == f"dispatcher:{port}"


# --- the campaign dashboard (conversions, uplift and ROI per trigger and variant) --------

CAMPAIGNS = MONITORING / "grafana" / "dashboards" / "campaigns.json"


def test_campaign_dashboard_queries_parse_and_use_declared_metrics_and_labels(
    tmp_path: Path,
) -> None:
    queries = dashboard_queries(CAMPAIGNS)
    assert len(queries) >= 12
    rules = [{"record": f"campaigns:query_{i}", "expr": expr} for i, expr in enumerate(queries)]
    rule_file = tmp_path / "campaign_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "campaigns", "rules": rules}]}))
    _assert_ok(_promtool("check", "rules", str(rule_file)))
    test_every_kairos_metric_used_is_declared("campaigns dashboard", queries)
    test_every_label_used_with_a_kairos_metric_is_declared("campaigns dashboard", queries)


def test_campaign_dashboard_panels_and_datasource() -> None:
    panels = dashboard_panels(CAMPAIGNS)
    titles = {panel["title"] for panel in panels}
    assert {"ROI on incremental revenue", "Uplift (conversion rate sent - held out)"} <= titles
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["targets"], panel["title"]
        for owner in (panel, *panel["targets"]):
            assert owner["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    kairos = json.loads(DASHBOARD.read_text())
    assert json.loads(CAMPAIGNS.read_text())["uid"] != kairos["uid"]
