"""Out-of-range values reach ``dead-letters`` through a real worker, and fire nothing.

One record per bound, each for its own customer, published to its topic; the worker
must dead-letter every one with its reason and the original bytes, while a valid
detractor answer published after them still fires ``nps_detractor``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from kafka_helpers import produce
from workers import Worker, collect, worker_env

from kairos.launcher import Broker

pytestmark = pytest.mark.integration

TOPIC = {"nps": "engagement", "review": "engagement", "add_to_cart": "clickstream"}
TOPIC |= {"order_placed": "orders", "page_view": "clickstream"}

# (customer suffix, type, fields, words of the dead letter's error)
BOUNDS = [
    ("nps-neg", "nps", {"score": -5}, "'score' of nps must be from 0 to 10, got -5"),
    ("nps-11", "nps", {"score": 11}, "'score' of nps must be from 0 to 10, got 11"),
    ("nps-none", "nps", {}, "missing required field 'score'"),
    ("review-9", "review", {"score": 9}, "'score' of review must be from 0 to 5, got 9"),
    ("qty", "add_to_cart", {"product_id": "p", "quantity": 10**9}, "'quantity' must be at most"),
    ("price", "add_to_cart", {"product_id": "p", "price": 5e12}, "'price' must be at most 10^12"),
    ("eur", "order_placed", {"order_id": "o", "currency": "eur"}, "ISO 4217"),
    ("long", "page_view", {"session_id": "s" * 200}, "'session_id' is longer than 128"),
    ("secs", "page_view", {"ts": int(time.time())}, "looks like seconds"),
    ("micro", "page_view", {"ts": time.time_ns() // 1000}, "looks like microseconds"),
    ("future", "page_view", {"ts": "2150-01-01T00:00:00Z"}, "is after 2100"),
]


@pytest.fixture(scope="module")
def worker(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    config = tmp_path_factory.mktemp("cfg") / "triggers.yaml"
    config.write_text("policy:\n  quiet_hours:\n    enabled: false\n")
    running = Worker(worker_env(broker.url, redis_url, config, f"bounds-{uuid.uuid4().hex[:6]}"))
    yield running
    running.stop()


def body(customer: str, etype: str, fields: dict[str, object]) -> bytes:
    record = {"event_id": uuid.uuid4().hex, "type": etype, "customer_id": customer}
    record["ts"] = time.time_ns() // 1_000_000
    return orjson.dumps({**record, **fields})


async def test_every_bound_dead_letters_its_record_and_fires_nothing(
    worker: Worker, bootstrap: str
) -> None:
    run = uuid.uuid4().hex[:6]
    expected: dict[str, tuple[str, bytes]] = {}
    for suffix, etype, fields, words in BOUNDS:
        customer = f"{run}-{suffix}"
        raw = body(customer, etype, fields)
        expected[customer] = (words, raw)
        await produce(bootstrap, TOPIC[etype], [(customer.encode(), raw)])
    detractor = f"{run}-ok"
    await produce(
        bootstrap, "engagement", [(detractor.encode(), body(detractor, "nps", {"score": 3}))]
    )

    dead = await collect(
        bootstrap, "dead-letters", lambda r: r["key"] in expected, len(expected), timeout=60
    )
    by_customer = {d["key"]: d for d in dead}
    assert set(by_customer) == set(expected)
    for customer, (words, raw) in expected.items():
        assert words in by_customer[customer]["error"], customer
        assert by_customer[customer]["raw"] == raw.decode(), "the original bytes are kept"

    alerts = await collect(
        bootstrap,
        "actions",
        lambda r: r["trigger"] == "nps_detractor" and r["customer_id"].startswith(run),
        2,
        timeout=10,
    )
    assert [a["customer_id"] for a in alerts] == [detractor]
    assert worker.metric("kairos_events_invalid_total") >= len(expected)
