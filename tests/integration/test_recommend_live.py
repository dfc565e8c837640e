"""Recommendations and membership live: two workers in one group on a real broker; what
one worker's product agent learns reaches a payload decided on the other worker, and
orders move a customer's tier."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from kafka_helpers import produce
from workers import Worker, collect, worker_env

from kairos.launcher import Broker
from stream.output import partition_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
CONFIG = """
engine:
  timer_grace: 0s
policy:
  quiet_hours:
    enabled: false
recommend:
  enabled: true
membership:
  enabled: true
triggers:
  browse_abandonment:
    delay: 2s
    cooldown: 0s
  tier_changed:
    enabled: true
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def view(customer: str, product: str, category: str = "lamps") -> tuple[bytes, bytes]:
    body = {
        "event_id": uuid.uuid4().hex,
        "type": "product_view",
        "customer_id": customer,
        "ts": now_ms(),
        "product_id": product,
        "category": category,
    }
    return customer.encode(), orjson.dumps(body)


def owned(worker: Worker, timeout: float = 60.0) -> set[int]:
    """The partitions a worker recovered last (its log says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        found = re.findall(r"recovered partitions \[([\d, ]*)\]", worker.tail(400))
        if found:
            return {int(p) for p in found[-1].split(",") if p.strip()}
        time.sleep(0.2)
    raise AssertionError(f"no partitions recovered\n{worker.tail()}")


@pytest.fixture(scope="module")
def workers(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    config = tmp_path_factory.mktemp("cfg") / "triggers.yaml"
    config.write_text(CONFIG)
    env = {**worker_env(broker.url, redis_url, config, f"rec-{uuid.uuid4().hex[:6]}")}
    env["KAIROS_PARTITIONS"] = str(PARTITIONS)
    first = Worker(env)
    owned(first)
    second = Worker(env)
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


def pick(prefix: str, partitions: set[int]) -> str:
    """An id (with a fresh suffix) whose partition is in ``partitions``."""
    while True:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if partition_for(name, PARTITIONS) in partitions:
            return name


async def test_a_payload_carries_what_another_worker_learned(
    workers: tuple[Worker, Worker], bootstrap: str
) -> None:
    first, second = workers
    deadline = time.monotonic() + 60
    while True:  # the group settles with two partitions each
        a, b = owned(first), owned(second)
        if a and b and not a & b and len(a | b) == PARTITIONS:
            break
        assert time.monotonic() < deadline, (a, b)
        time.sleep(0.5)
    seed = pick("lamp", a)  # its sketch is kept by the first worker...
    shopper = pick("shopper", b)  # ...the shopper's state by the second
    related, other = pick("shade", a | b), pick("bulb", a | b)
    crowd = [f"crowd-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    lamps = f"lamps-{uuid.uuid4().hex[:8]}"  # the seed's category: this test's alone
    records = []
    for i, c in enumerate(crowd):
        # other categories: only the seed's co-view sketch can recommend them, not its
        # category's most viewed (which holds the seed alone)
        records += [
            view(c, seed, lamps),
            view(c, *((related, "shades") if i % 3 else (other, "bulbs"))),
        ]
    await produce(bootstrap, "clickstream", records)
    published = await collect(
        bootstrap,
        "recommendations",
        lambda r: isinstance(r.get("r"), dict) and related in r["r"] and other in r["r"],
        1,
        timeout=30,
    )
    assert published, first.tail() + second.tail()
    await produce(
        bootstrap, "clickstream", [view(shopper, seed, lamps), view(shopper, seed, lamps)]
    )
    actions = await collect(
        bootstrap,
        "actions",
        lambda r: r["customer_id"] == shopper and r["trigger"] == "browse_abandonment",
        1,
        timeout=30,
    )
    assert actions, second.tail()
    assert actions[0]["payload"]["recommended"] == [related, other]


def order(
    customer: str, order_id: str, total: float, etype: str = "order_placed"
) -> tuple[bytes, bytes]:
    body: dict[str, object] = {
        "event_id": uuid.uuid4().hex,
        "type": etype,
        "customer_id": customer,
        "ts": now_ms(),
        "order_id": order_id,
    }
    if etype == "order_placed":
        body.update(total=total, currency="EUR", items=[{"product_id": "sku-m", "price": total}])
    return customer.encode(), orjson.dumps(body)


async def test_orders_move_the_tier_once(workers: tuple[Worker, Worker], bootstrap: str) -> None:
    member = f"member-{uuid.uuid4().hex[:8]}"
    await produce(
        bootstrap,
        "orders",
        [
            order(member, "m1", 300.0),
            order(member, "m2", 250.0),  # 550 points: silver
            order(member, "m2", 250.0),  # the same order again, under a new event id
            order(member, "m3", 1500.0),  # 2,050: gold
            order(member, "m3", 0.0, "order_refunded"),  # back to silver, no message
            order(member, "m4", 1500.0),  # gold again: congratulated again
        ],
    )
    actions = await collect(
        bootstrap,
        "actions",
        lambda r: r["customer_id"] == member and r["trigger"] == "tier_changed",
        3,
        timeout=30,
    )
    await asyncio.sleep(2)  # would more come?
    actions = await collect(
        bootstrap,
        "actions",
        lambda r: r["customer_id"] == member and r["trigger"] == "tier_changed",
        4,
        timeout=2,
    )
    got = [(a["payload"]["kind"], a["payload"]["tier"], a["payload"]["points"]) for a in actions]
    assert got == [("upgrade", "silver", 550), ("upgrade", "gold", 2050), ("upgrade", "gold", 2050)]
