"""``kairos_consumer_lag_messages`` on a running worker: end of log minus committed, per partition.

The committed offsets come from Faust's consumer (``stream.app.committed_offsets``); if
they were not read, every partition would count from its earliest offset and the lag of a
worker that has caught up would stay at the number of records, never 0.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid

import orjson
import pytest
from kafka_helpers import produce
from workers import Worker, worker_env

from kairos.launcher import Broker
from stream import topics

pytestmark = pytest.mark.integration

SAMPLE = re.compile(r"^kairos_consumer_lag_messages\{([^}]*)\} (\S+)$", re.MULTILINE)
INPUTS = (topics.CLICKSTREAM, topics.ORDERS, topics.ENGAGEMENT, topics.PROFILES)


def lags(worker: Worker) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=2) as r:
        text = r.read().decode()
    found = {}
    for labels, value in SAMPLE.findall(text):
        got = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        found[got["topic"], got["partition"]] = float(value)
    return found


async def test_a_worker_that_has_caught_up_reports_no_lag_on_each_input_partition(
    broker: Broker, redis_url: str, tmp_path
) -> None:
    config = tmp_path / "triggers.yaml"
    config.write_text("policy:\n  quiet_hours:\n    enabled: false\n")
    customers = [f"lag-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    views = [
        (
            c.encode(),
            orjson.dumps(
                {
                    "event_id": uuid.uuid4().hex,
                    "type": "page_view",
                    "customer_id": c,
                    "ts": time.time_ns() // 1_000_000,
                    "url": "/",
                }
            ),
        )
        for c in customers
    ]
    await produce(broker.bootstrap, topics.CLICKSTREAM, views)  # records on every partition
    worker = Worker(worker_env(broker.url, redis_url, config, f"lag-{uuid.uuid4().hex[:6]}"))
    try:
        worker.wait_metric("kairos_events_consumed_total", len(views), timeout=60)
        deadline = time.monotonic() + 30
        seen: dict[tuple[str, str], float] = {}
        while time.monotonic() < deadline:
            worker.check_alive()
            seen = lags(worker)
            clicks = {k: v for k, v in seen.items() if k[0] == topics.CLICKSTREAM}
            if len(clicks) == 4 and not any(clicks.values()):
                break
            time.sleep(0.5)
        assert {t for t, _ in seen} >= set(INPUTS), seen
        assert not [t for t, _ in seen if t.endswith("-changelog")], seen  # recovery, not lag
        clicks = {k: v for k, v in seen.items() if k[0] == topics.CLICKSTREAM}
        assert sorted(p for _, p in clicks) == ["0", "1", "2", "3"], seen
        assert not any(clicks.values()), f"caught up, yet lagging: {seen}\n{worker.tail()}"
    finally:
        worker.stop()
