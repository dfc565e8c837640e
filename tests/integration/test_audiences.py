"""Audiences and lead scoring end to end: a real worker, broker and Redis; actions out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from kafka_helpers import produce
from workers import Worker, collect, worker_env

from core.ids import action_id
from core.scores import owner
from kairos.launcher import Broker

pytestmark = pytest.mark.integration

CONFIG = """
policy:
  quiet_hours: {enabled: false}
audiences:
  vip: "revenue >= 500"
  germans: "country == 'DE'"
  active_vip: "vip and days_since_active < 0.0001"  # active within the last 8.64 s
scores:
  lead:
    mql: 45  # under the ~50 of a 2nd step: a ms of decay between events keeps it below 50
    points:
      - {on: page_view, url: /pricing, points: 20}
      - {on: page_view, url: /demo, points: 40}
    fit:
      - {when: "attributes.company_size >= 200", points: 10}
triggers:
  segment_entered: {audiences: [vip], channel: email}
  segment_exited: {audiences: [active_vip], recheck: 2s}
  nps_detractor: {audience: germans}
  lead_qualified:
    owners: [ann, bob, cid]
    territory_attribute: region
    territories: ["emea:eva"]
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(customer: str, etype: str, **fields: object) -> tuple[bytes, bytes]:
    body = {
        "event_id": uuid.uuid4().hex,
        "type": etype,
        "customer_id": customer,
        "ts": now_ms(),
        **fields,
    }
    return customer.encode(), orjson.dumps(body)


def profile(customer: str, **attributes: object) -> tuple[bytes, bytes]:
    body = {"customer_id": customer, "email": f"{customer}@example.com", "attributes": attributes}
    return customer.encode(), orjson.dumps(body)


@pytest.fixture(scope="module")
def worker(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    config = tmp_path_factory.mktemp("cfg") / "triggers.yaml"
    config.write_text(CONFIG)
    running = Worker(worker_env(broker.url, redis_url, config, f"aud-{uuid.uuid4().hex[:6]}"))
    yield running
    running.stop()


async def test_becoming_a_vip_sends_segment_entered_once(worker: Worker, bootstrap: str) -> None:
    vip, small = f"vip-{uuid.uuid4().hex[:8]}", f"small-{uuid.uuid4().hex[:8]}"
    first = event(vip, "order_placed", order_id="o-1", total=300.0)
    second = event(vip, "order_placed", order_id="o-2", total=250.0)  # 550: a vip now
    third = event(vip, "order_placed", order_id="o-3", total=10.0)  # still one: no new entry
    other = event(small, "order_placed", order_id="o-9", total=20.0)
    await produce(bootstrap, "orders", [first, other, second, third])

    def entered(r: dict[str, object]) -> bool:
        return r["trigger"] == "segment_entered" and r["customer_id"] in (vip, small)

    actions = await collect(bootstrap, "actions", entered, 2, timeout=30)
    assert len(actions) == 1, actions
    (action,) = actions
    cause = orjson.loads(second[1])["event_id"]
    assert action["customer_id"] == vip
    assert action["payload"]["audience"] == "vip"
    assert action["status"] == "send" and action["channel"] == "email"
    assert action["source_event_ids"] == [cause]
    assert action["action_id"] == action_id("segment_entered", vip, ("vip", cause))

    def changes(r: dict[str, object]) -> bool:
        return r["customer_id"] in (vip, small) and r["name"] == "vip"

    (change,) = await collect(bootstrap, "segment-changes", changes, 2, timeout=5)
    assert (change["customer_id"], change["kind"], change["name"]) == (vip, "audience", "vip")
    assert (change["change"], change["event_id"]) == ("entered", cause)
    # the gauge follows at the next checkpoint (0.5 s)
    assert worker.wait_metric("kairos_customers_in_audience", 1, timeout=10) >= 1
    assert worker.metric("kairos_segment_changes_total") >= 1


async def test_a_lead_crossing_the_mql_reaches_sales_with_owner_and_score(
    worker: Worker, bootstrap: str
) -> None:
    emea, other = f"lead-{uuid.uuid4().hex[:8]}", f"lead-{uuid.uuid4().hex[:8]}"
    await produce(
        bootstrap,
        "profiles",
        [profile(emea, company_size=500, region="emea"), profile(other, company_size=10)],
    )
    await produce(
        bootstrap,
        "clickstream",
        [
            event(emea, "page_view", url="/pricing"),  # 20 + fit 10
            event(other, "page_view", url="/demo"),  # 40
            event(emea, "page_view", url="/pricing"),  # ~50: qualifies
            event(other, "page_view", url="/pricing"),  # ~60: qualifies
            event(emea, "page_view", url="/demo"),  # ~90: already qualified
        ],
    )

    def leads(r: dict[str, object]) -> bool:
        return r["trigger"] == "lead_qualified" and r["customer_id"] in (emea, other)

    actions = await collect(bootstrap, "actions", leads, 3, timeout=30)
    by_customer = {a["customer_id"]: a for a in actions}
    assert len(actions) == 2 and set(by_customer) == {emea, other}, actions
    assert by_customer[emea]["payload"]["owner"] == "eva"  # the territory's only owner
    assert by_customer[emea]["payload"]["territory"] == "emea"
    assert by_customer[other]["payload"]["owner"] == owner(other, 0, ("ann", "bob", "cid"))
    assert by_customer[other]["payload"]["territory"] == ""
    assert worker.metric("kairos_mqls_total") >= 2
    for a in actions:
        assert a["channel"] == "slack" and a["status"] == "send"
        assert 49.9 <= a["payload"]["score"] <= 60.0
        assert a["payload"]["qualification"] == 1


async def test_a_triggers_audience_keeps_others_out(worker: Worker, bootstrap: str) -> None:
    german, french = f"de-{uuid.uuid4().hex[:8]}", f"fr-{uuid.uuid4().hex[:8]}"
    await produce(
        bootstrap, "profiles", [profile(german, country="DE"), profile(french, country="FR")]
    )
    await produce(
        bootstrap,
        "engagement",
        [event(french, "nps", score=1), event(german, "nps", score=1)],
    )

    def detractors(r: dict[str, object]) -> bool:
        return r["trigger"] == "nps_detractor" and r["customer_id"] in (german, french)

    actions = await collect(bootstrap, "actions", detractors, 2, timeout=20)
    assert [a["customer_id"] for a in actions] == [german]


async def test_leaving_an_audience_by_time_alone_fires_segment_exited_on_the_clock(
    worker: Worker, bootstrap: str
) -> None:
    quiet = f"quiet-{uuid.uuid4().hex[:8]}"
    await produce(bootstrap, "orders", [event(quiet, "order_placed", order_id="o", total=900.0)])
    sent = time.monotonic()

    def exits(r: dict[str, object]) -> bool:
        return r["trigger"] == "segment_exited" and r["customer_id"] == quiet

    # no further event: the re-check timer (every 2 s) sees active_vip end 8.64 s later
    actions = await collect(bootstrap, "actions", exits, 1, timeout=40)
    waited = time.monotonic() - sent
    assert len(actions) == 1, worker.tail()
    (action,) = actions
    assert action["payload"]["audience"] == "active_vip"
    assert action["source_event_ids"] == []  # the clock moved them, not an event
    assert 8 <= waited <= 30, waited

    def changes(r: dict[str, object]) -> bool:
        return r["customer_id"] == quiet and r["name"] == "active_vip"

    records = await collect(bootstrap, "segment-changes", changes, 2, timeout=5)
    assert [(r["change"], r["event_id"]) for r in records] == [
        ("entered", records[0]["event_id"]),
        ("exited", None),
    ]
    assert records[0]["event_id"] is not None
