"""A real Prometheus scrapes a running worker and dispatcher; the dashboard and alerts run on it.

One module-wide stack, on its own broker and Redis so every count is exact: a
``kairos worker`` (abandoned cart fires 2 s after the cart), a ``kairos dispatcher``
(console channel) and ``prometheus`` scraping both every second with
monitoring/alerts.yml loaded. The ``traffic`` fixture publishes contract events once
(page views, carts, an order, a duplicate, a late event, invalid records) and waits
until Prometheus has scraped their effects. Then:

- ``/health``, ``/ready`` and ``/metrics`` of both processes answer as documented;
- the Prometheus API returns the expected series and values;
- every dashboard query and alert expression parses and runs on this Prometheus, and
  every ``kairos_*`` metric it reads has at least one series here, except the few in
  ``ABSENT_IN_THIS_RUN``, each documented with the component that should produce it
  (and checked to really be absent, so the list shrinks when they appear).

Skips only when the ``prometheus`` binary is not on PATH (CI installs it with apt).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka_helpers import produce
from prometheus_client.metrics import MetricWrapperBase
from prometheus_server import MISSING, PrometheusServer, prometheus_binary
from workers import Worker, worker_env

from kairos.launcher import (
    Broker,
    RedisServer,
    free_port,
    resolve_broker_bin,
    resolve_redis_bin,
    start_broker,
    start_redis,
)
from monitoring import metrics
from monitoring.promql import (
    alert_expressions,
    dashboard_panels,
    dashboard_queries,
    metric_names,
    substitute_variables,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(prometheus_binary() is None, reason=MISSING),
]

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "alerts.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "kairos.json"
CAMPAIGNS = ROOT / "monitoring" / "grafana" / "dashboards" / "campaigns.json"

CONFIG = """
engine:
  timer_grace: 0s
triggers:
  abandoned_cart:
    delay: 2s
    variants:  # the same message twice but for its text: statuses and counts as without
      A: {}
      B: {template: "Still there? {item_count} item(s) in your cart"}
policy:
  quiet_hours:
    enabled: false
"""

# Metrics the dashboard or alerts read that this run cannot produce, and who should.
# Each entry is asserted to be ABSENT too: when one starts to appear, remove it here.
ABSENT_IN_THIS_RUN: dict[str, str] = {
    "kairos_delivery_retries_total": (
        "dispatcher (channels/resilience.py): only when a send is retried; "
        "the console channel never fails"
    ),
    "kairos_deliveries_resent_total": (
        "dispatcher (channels/dispatch.py): only when a dispatcher stopped mid-send "
        "and another sends the action again (tests/integration/test_dispatcher_crash.py)"
    ),
    "kairos_customers_in_audience": (
        "worker (agents/runtime.py): only with watched audiences configured "
        "(tests/integration/test_audiences.py)"
    ),
    "kairos_segment_changes_total": (
        "worker: only when a customer enters or leaves a watched audience or a lead "
        "qualifies (tests/integration/test_audiences.py)"
    ),
    "kairos_mqls_total": (
        "worker: only with lead scoring configured (tests/integration/test_audiences.py)"
    ),
    "kairos_conversion_discount_total": (
        "worker (agents/runtime.py): only when an order redeems an offer code "
        "(tests/unit/test_variants.py, tests/unit/test_roi.py)"
    ),
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(
    customer: str, etype: str, ts: int | None = None, **fields: object
) -> tuple[bytes, bytes]:
    body = {
        "event_id": fields.pop("event_id", None) or uuid.uuid4().hex,
        "type": etype,
        "customer_id": customer,
        "ts": ts if ts is not None else now_ms(),
        **fields,
    }
    return customer.encode(), orjson.dumps(body)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(process: Worker, timeout: float = 45.0) -> list[int]:
    """Poll ``/ready`` until 200; returns every status seen (503s while recovering)."""
    url = f"http://127.0.0.1:{process.metrics_port}/ready"
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.check_alive()
        try:
            status, _ = get(url)
        except OSError:
            status = 0  # not listening yet
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == 200:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"/ready never answered 200 (saw {seen})\n{process.tail()}")


@dataclass
class Stack:
    broker: Broker
    redis: RedisServer
    worker: Worker
    dispatcher: Worker
    prometheus: PrometheusServer
    worker_ready: list[int]
    dispatcher_ready: list[int]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("prom-e2e")
    config = tmp / "triggers.yaml"
    config.write_text(CONFIG)
    # Own broker and Redis (not the session ones): counts below are exact, and no live
    # config override left in a shared Redis can change the triggers.
    with contextlib.ExitStack() as cleanup:  # stops whatever started, in reverse order
        broker = start_broker(resolve_broker_bin(), log_dir=tmp)
        cleanup.callback(broker.stop)
        redis = start_redis(resolve_redis_bin(), log_dir=tmp)
        cleanup.callback(redis.stop)
        env = worker_env(broker.url, redis.url, config, f"prom-{uuid.uuid4().hex[:6]}")
        worker = Worker(env)
        cleanup.callback(worker.stop)
        dispatcher_port = free_port()
        dispatcher = Worker(
            {
                **env,
                "KAIROS_CHANNEL_OVERRIDE": "console",
                "KAIROS_DISPATCHER_METRICS_PORT": str(dispatcher_port),
                "KAIROS_METRICS_PORT": str(dispatcher_port),  # so Worker.metric() reads it
                "KAIROS_DISPATCH_TICK": "0.1",
            },
            command="dispatcher",
        )
        cleanup.callback(dispatcher.stop)
        prometheus = PrometheusServer(
            tmp / "prometheus",
            {
                "kairos-worker": [f"127.0.0.1:{worker.metrics_port}"],
                "kairos-dispatcher": [f"127.0.0.1:{dispatcher_port}"],
            },
            rule_files=[ALERTS],
        )
        cleanup.callback(prometheus.stop)
        prometheus.wait_ready()
        worker_ready = wait_ready(worker)
        dispatcher_ready = wait_ready(dispatcher)
        yield Stack(broker, redis, worker, dispatcher, prometheus, worker_ready, dispatcher_ready)


@dataclass
class Traffic:
    consumed: Counter[tuple[str, str]]  # (topic, type) -> valid records sent
    invalid: int
    duplicates: int
    late: int
    carts: int  # customers who abandon a cart: one abandoned_cart send each


@pytest.fixture(scope="module")
async def traffic(stack: Stack) -> Traffic:
    run = uuid.uuid4().hex[:6]
    buyer, keeper, browser = f"buyer-{run}", f"dup-{run}", f"late-{run}"
    clickstream = [
        event(buyer, "page_view", url="/p/sku-1", product_id="sku-1"),
        event(buyer, "page_view", url="/p/sku-1", product_id="sku-1"),
        event(buyer, "add_to_cart", product_id="sku-1", price=20.0, quantity=2),
    ]
    twice = event(keeper, "add_to_cart", event_id=f"{keeper}-e1", product_id="sku-2", price=5.0)
    clickstream += [twice, twice]  # the second is a duplicate
    clickstream += [
        event(browser, "page_view", url="/home"),
        # 20 minutes older than the customer's newest event: late (late_grace 10m).
        event(browser, "page_view", ts=now_ms() - 20 * 60_000, url="/old"),
    ]
    invalid = [(buyer.encode(), b"{not json"), (buyer.encode(), orjson.dumps({"type": "x"}))]
    await produce(stack.broker.bootstrap, "clickstream", clickstream + invalid)

    consumed: Counter[tuple[str, str]] = Counter(
        ("clickstream", orjson.loads(value)["type"]) for _, value in clickstream
    )
    traffic = Traffic(consumed, invalid=len(invalid), duplicates=1, late=1, carts=2)

    # Both carts are abandoned: 2 s later the worker decides to send, and the dispatcher
    # delivers through the console channel.
    prom = stack.prometheus
    prom.wait_for(
        'sum(kairos_decisions_total{trigger="abandoned_cart",status="send"})',
        lambda v: v is not None and v >= traffic.carts,
        timeout=30,
    )
    # An order after the message: attributed to abandoned_cart (group "sent").
    await produce(
        stack.broker.bootstrap,
        "orders",
        [event(buyer, "order_placed", order_id=f"o-{run}", total=40.0)],
    )
    traffic.consumed["orders", "order_placed"] += 1
    prom.wait_for(
        'sum(kairos_conversions_total{trigger="abandoned_cart",group="sent"})',
        lambda v: v is not None and v >= 1,
        timeout=20,
    )
    prom.wait_for(
        'sum(kairos_deliveries_total{channel="console",outcome="delivered"})',
        lambda v: v is not None and v >= traffic.carts,
        timeout=30,
        what=f"console deliveries (dispatcher log: {stack.dispatcher.log.name})",
    )
    # A labelled counter is born at its first value, which rate() cannot see: one more
    # page view, now that the series exists, makes rate() over the scrapes positive.
    await produce(stack.broker.bootstrap, "clickstream", [event(browser, "page_view", url="/")])
    traffic.consumed["clickstream", "page_view"] += 1
    prom.wait_for(
        'sum(rate(kairos_events_consumed_total{type="page_view"}[1m]))',
        lambda v: v is not None and v > 0,
        timeout=20,
    )
    # Every counter we assert on exactly has been scraped at its final value.
    for (topic, etype), n in traffic.consumed.items():
        prom.wait_for(
            f'sum(kairos_events_consumed_total{{topic="{topic}",type="{etype}"}})',
            lambda v, n=n: v == n,
            timeout=20,
        )
    return traffic


# --- the worker's and dispatcher's own HTTP endpoints -------------------------------


def test_worker_serves_health_ready_and_metrics(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.worker.metrics_port}"
    assert stack.worker_ready[-1] == 200
    assert set(stack.worker_ready) <= {0, 503, 200}, stack.worker_ready
    status, body = get(f"{base}/ready")
    assert status == 200
    assert json.loads(body) == {
        "status": "ready",
        "checks": {"partitions": "recovered", "redis": "ok"},
    }
    status, body = get(f"{base}/health")
    assert (status, json.loads(body)) == (200, {"status": "alive"})
    status, body = get(f"{base}/metrics")
    assert status == 200
    assert b"# TYPE kairos_events_consumed_total counter" in body
    assert b"kairos_config_generation 1.0" in body


def test_dispatcher_serves_health_ready_and_metrics(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.dispatcher.metrics_port}"
    status, body = get(f"{base}/ready")
    assert status == 200
    assert json.loads(body) == {"status": "ready", "checks": {"channels": "console", "redis": "ok"}}
    status, body = get(f"{base}/health")
    assert (status, json.loads(body)) == (200, {"status": "alive"})
    status, body = get(f"{base}/metrics")
    assert status == 200 and b'kairos_circuit_open{channel="console"} 0.0' in body


# --- what Prometheus scraped ----------------------------------------------------------


def test_prometheus_scrapes_both_targets(stack: Stack, traffic: Traffic) -> None:
    prom = stack.prometheus
    health = {t["labels"]["job"]: t["health"] for t in prom.targets()}
    assert health == {"kairos-worker": "up", "kairos-dispatcher": "up"}, prom.targets()
    assert prom.value('up{job="kairos-worker"}') == 1
    assert prom.value('up{job="kairos-dispatcher"}') == 1


def test_prometheus_has_the_expected_series_and_values(stack: Stack, traffic: Traffic) -> None:
    prom = stack.prometheus
    for (topic, etype), n in traffic.consumed.items():
        got = prom.value(f'sum(kairos_events_consumed_total{{topic="{topic}",type="{etype}"}})')
        assert got == n, (topic, etype)
    assert prom.value('sum(kairos_events_consumed_total{type="add_to_cart"})') == 3
    assert prom.value('kairos_dead_letters_total{topic="clickstream"}') == traffic.invalid
    assert prom.value("sum(kairos_events_invalid_total)") == traffic.invalid
    assert prom.value('kairos_events_invalid_total{reason="malformed"}') == 1
    assert prom.value('kairos_duplicates_dropped_total{topic="clickstream"}') == traffic.duplicates
    assert prom.value('kairos_late_events_total{topic="clickstream"}') == traffic.late
    sends = prom.value('kairos_decisions_total{trigger="abandoned_cart",status="send"}')
    assert sends == traffic.carts
    assert prom.value('kairos_timers_fired_total{kind="abandoned_cart"}') == traffic.carts
    assert prom.value('kairos_conversions_total{trigger="abandoned_cart",group="sent"}') == 1
    assert (
        prom.value('kairos_conversion_revenue_total{trigger="abandoned_cart",group="sent"}') == 40
    )
    # Both processes load the campaign config at start: generation 1, one successful load.
    for job in ("kairos-worker", "kairos-dispatcher"):
        assert prom.value(f'kairos_config_reloads_total{{job="{job}",result="success"}}') >= 1
        assert prom.value(f'kairos_config_generation{{job="{job}"}}') == 1
    assert prom.value('kairos_state_flushed_total{job="kairos-worker"}') >= 1
    assert prom.value('sum(kairos_customers{job="kairos-worker"})') == 3
    # The dispatcher exports its own gauges: its Redis queue and its lag on actions.
    for state in ("due", "scheduled"):
        assert prom.value(f'kairos_dispatch_queue{{job="kairos-dispatcher",state="{state}"}}') >= 0
    lag = 'sum(kairos_consumer_lag_messages{job="kairos-dispatcher",topic="actions"})'
    assert prom.value(lag) >= 0
    # ...and none of the worker's: at 0 they would read as "fine" on a dashboard.
    for name in ("kairos_timers_pending", "kairos_state_flushed_total"):
        assert prom.vector(f'{name}{{job="kairos-dispatcher"}}') == [], name
        assert prom.vector(f'{name}{{job="kairos-worker"}}') != [], name

    # Histograms: every declared bucket, cumulative, +Inf equal to _count.
    worker, dispatcher = 'job="kairos-worker"', 'job="kairos-dispatcher"'
    latency = len(metrics.LATENCY_BUCKETS) + 1
    for name, labels, n in [
        ("kairos_event_processing_seconds", worker, len(metrics.PROCESSING_BUCKETS) + 1),
        ("kairos_decision_lag_seconds", f'{worker},trigger="abandoned_cart"', latency),
        ("kairos_timer_lateness_seconds", worker, latency),
        ("kairos_delivery_seconds", f'{dispatcher},channel="console"', latency),
    ]:
        buckets = prom.vector(f"{name}_bucket{{{labels}}}")
        assert len(buckets) == n, (name, buckets)
        by_le = sorted((float(m["le"]), v) for m, v in buckets)
        assert [v for _, v in by_le] == sorted(v for _, v in by_le), f"{name} not cumulative"
        assert by_le[-1] == (float("inf"), prom.value(f"{name}_count{{{labels}}}"))
        assert by_le[-1][1] >= 1, name
    assert prom.value('kairos_decision_lag_seconds_count{trigger="abandoned_cart"}') == 2
    assert prom.value('kairos_delivery_seconds_count{channel="console"}') >= traffic.carts
    # rate() over the scrapes works (the dashboard's and alerts' basic building block).
    assert prom.value("sum(rate(kairos_events_consumed_total[1m]))") > 0


def _series_count(prom: PrometheusServer, name: str) -> int:
    return len(prom.series(f'{{__name__="{name}"}}'))


def _check_queries(stack: Stack, queries: list[str], source: str) -> None:
    prom = stack.prometheus
    assert queries, f"no queries found in {source}"
    problems = []
    for expr in queries:
        answer = prom.query(expr)
        if answer.get("status") != "success":
            problems.append(f"{expr!r}: {answer.get('errorType')}: {answer.get('error')}")
            continue
        for name in sorted(metric_names(expr)):
            if name in ABSENT_IN_THIS_RUN or name.removesuffix("_bucket") in ABSENT_IN_THIS_RUN:
                continue
            if _series_count(prom, name) == 0:
                problems.append(f"{expr!r}: no series of {name} in Prometheus")
    assert not problems, f"{source}:\n" + "\n".join(problems)


def test_every_dashboard_query_runs_on_real_data(stack: Stack, traffic: Traffic) -> None:
    _check_queries(stack, dashboard_queries(DASHBOARD), "dashboard")


def test_every_campaign_dashboard_query_runs_on_real_data(stack: Stack, traffic: Traffic) -> None:
    _check_queries(stack, dashboard_queries(CAMPAIGNS), "campaigns dashboard")
    prom = stack.prometheus
    # Each abandoned cart decided one variant, at the push channel's default cost.
    assert prom.value('sum(kairos_variant_decisions_total{trigger="abandoned_cart"})') == (
        traffic.carts
    )
    cost = prom.value('kairos_message_cost_total{trigger="abandoned_cart",channel="push"}')
    assert cost == pytest.approx(traffic.carts * 0.001)
    converted = 'sum(kairos_variant_conversions_total{trigger="abandoned_cart",group="sent"})'
    assert prom.value(converted) == 1


def test_per_worker_panels_show_workers_only(stack: Stack, traffic: Traffic) -> None:
    """The dispatcher exports the worker's unlabelled metrics too (at 0): not a worker."""
    panel = next(p for p in dashboard_panels(DASHBOARD) if p["title"] == "Timers pending by worker")
    (expr,) = [substitute_variables(t["expr"], {"instance": ".*"}) for t in panel["targets"]]
    instances = [m["instance"] for m, _ in stack.prometheus.vector(expr)]
    assert instances == [f"127.0.0.1:{stack.worker.metrics_port}"]


def test_every_alert_expression_runs_on_real_data(stack: Stack, traffic: Traffic) -> None:
    _check_queries(stack, alert_expressions(ALERTS), "alerts.yml")


def test_alert_rules_load_and_evaluate_without_errors(stack: Stack, traffic: Traffic) -> None:
    prom = stack.prometheus
    expected = {str(expr) for expr in alert_expressions(ALERTS)}
    deadline = time.monotonic() + 10
    while True:  # every rule evaluated at least once ("0001-01-01..." until then)
        rules = prom.rules()
        if all(not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    assert len(rules) == len(expected)
    bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad
    # With both processes up and events flowing, the "nothing is running" alerts are quiet.
    state = {r["name"]: r["state"] for r in rules}
    for name in ("KairosNoWorkers", "KairosWorkerDown", "KairosDispatcherDown"):
        assert state[name] == "inactive", (name, state[name])
    assert state["KairosEventsMetricAbsent"] == "inactive"


def test_every_metric_the_dashboards_read_is_produced_or_allow_listed(
    stack: Stack, traffic: Traffic
) -> None:
    """Declared metrics: present in this run, or absent and documented in ABSENT_IN_THIS_RUN."""
    prom = stack.prometheus
    sample = {"counter": "_total", "gauge": "", "histogram": "_bucket", "info": "_info"}
    missing, unexpected = [], []
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        for family in collector.describe():
            name = family.name + sample[family.type]
            present = _series_count(prom, name) > 0
            if name in ABSENT_IN_THIS_RUN:
                if present:
                    unexpected.append(f"{name} now has series: remove it from ABSENT_IN_THIS_RUN")
            elif not present:
                missing.append(name)
    assert not missing, f"declared but never exported in this run: {missing}"
    assert not unexpected, unexpected
