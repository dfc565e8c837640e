"""The worker end to end: contract events in, actions and dead letters out, on a real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from kafka_helpers import produce
from workers import Worker, collect, worker_env

from core.ids import action_id
from kairos.launcher import Broker
from stream.events import MAX_RECORD_BYTES

pytestmark = pytest.mark.integration

CONFIG = """
engine:
  timer_grace: 0s
triggers:
  abandoned_cart:
    delay: {delay}
policy:
  quiet_hours:
    enabled: false
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(
    customer: str, etype: str, event_id: str | None = None, **fields: object
) -> tuple[bytes, bytes]:
    body = {
        "event_id": event_id or uuid.uuid4().hex,
        "type": etype,
        "customer_id": customer,
        "ts": now_ms(),
        **fields,
    }
    return customer.encode(), orjson.dumps(body)


def carts(*customers: str):
    """Matches abandoned-cart actions of these customers (other triggers fire too)."""
    wanted = set(customers)
    return lambda r: r["trigger"] == "abandoned_cart" and r["customer_id"] in wanted


@pytest.fixture(scope="module")
def worker(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    config = tmp_path_factory.mktemp("cfg") / "triggers.yaml"
    config.write_text(CONFIG.format(delay="3s"))
    running = Worker(worker_env(broker.url, redis_url, config, f"itest-{uuid.uuid4().hex[:6]}"))
    yield running
    running.stop()


async def test_cart_without_order_fires_exactly_one_abandoned_cart_action(
    worker: Worker, bootstrap: str
) -> None:
    abandoner, buyer = f"ab-{uuid.uuid4().hex[:8]}", f"buy-{uuid.uuid4().hex[:8]}"
    cart_event = event(abandoner, "add_to_cart", product_id="sku-1", price=20.0, quantity=2)
    await produce(
        bootstrap,
        "clickstream",
        [
            cart_event,
            event(buyer, "add_to_cart", product_id="sku-2", price=5.0),
        ],
    )
    await produce(bootstrap, "orders", [event(buyer, "order_placed", order_id="o-1", total=5.0)])

    actions = await collect(bootstrap, "actions", carts(abandoner), 1, timeout=40)
    assert len(actions) == 1
    action = actions[0]
    assert action["trigger"] == "abandoned_cart" and action["status"] == "send"
    assert action["action_id"] == action_id("abandoned_cart", abandoner, (1, 1))
    assert action["payload"]["items"] == [{"product_id": "sku-1", "quantity": 2, "price": 20.0}]
    assert action["payload"]["cart_value"] == 40.0
    assert action["source_event_ids"] == [orjson.loads(cart_event[1])["event_id"]]

    await asyncio.sleep(4)  # well past the buyer's deadline too
    later = await collect(bootstrap, "actions", carts(abandoner, buyer), 3, timeout=3)
    assert [a["customer_id"] for a in later] == [abandoner], "order cancels; nothing fires twice"


async def test_bad_records_go_to_dead_letters_and_processing_continues(
    worker: Worker, bootstrap: str
) -> None:
    c = f"bad-{uuid.uuid4().hex[:8]}"
    oversized = orjson.dumps(
        {
            "event_id": "big",
            "type": "page_view",
            "customer_id": c,
            "ts": now_ms(),
            "url": "x" * MAX_RECORD_BYTES,
        }
    )
    bad = [
        (c.encode(), b"{not json"),
        (c.encode(), orjson.dumps({"type": "page_view", "customer_id": c, "ts": now_ms()})),
        (
            c.encode(),
            orjson.dumps(
                {
                    "event_id": "w",
                    "type": "add_to_cart",
                    "customer_id": c,
                    "ts": now_ms(),
                    "product_id": "p",
                    "price": "cheap",
                }
            ),
        ),
        (
            c.encode(),
            orjson.dumps({"event_id": "u", "type": "teleport", "customer_id": c, "ts": now_ms()}),
        ),
        (c.encode(), oversized),
    ]
    await produce(
        bootstrap, "clickstream", [*bad, event(c, "add_to_cart", product_id="ok", price=1.0)]
    )

    dead = await collect(bootstrap, "dead-letters", lambda r: r["key"] == c, 5, timeout=40)
    errors = [d["error"] for d in dead]
    assert len(dead) == 5
    assert any(e.startswith("malformed JSON") for e in errors)
    assert "missing required field 'event_id'" in errors
    assert "field 'price' must be a number, got a string" in errors
    assert any("unknown event type 'teleport'" in e for e in errors)
    assert any("exceeds the 65536-byte limit" in e for e in errors)
    assert {d["raw"] for d in dead} >= {"{not json"}, "the original bytes are kept"
    assert all(d["topic"] == "clickstream" and d["offset"] >= 0 for d in dead)

    actions = await collect(bootstrap, "actions", carts(c), 1, timeout=30)
    assert len(actions) == 1, "a good event after bad ones is still processed"


async def test_the_same_event_id_twice_is_processed_once(worker: Worker, bootstrap: str) -> None:
    c = f"dup-{uuid.uuid4().hex[:8]}"
    twice = event(c, "add_to_cart", event_id=f"{c}-e1", product_id="sku-9", price=10.0)
    await produce(bootstrap, "clickstream", [twice, twice])
    actions = await collect(bootstrap, "actions", carts(c), 1, timeout=40)
    assert actions[0]["payload"]["items"] == [{"product_id": "sku-9", "quantity": 1, "price": 10.0}]
    assert worker.metric("kairos_duplicates_dropped_total") >= 1


async def test_an_anonymous_cart_follows_the_visitor_into_their_account(
    worker: Worker, bootstrap: str
) -> None:
    anonymous, customer = f"anon-{uuid.uuid4().hex[:8]}", f"login-{uuid.uuid4().hex[:8]}"
    await produce(
        bootstrap,
        "clickstream",
        [
            event(anonymous, "product_view", product_id="sku-a", price=12.0),
            event(anonymous, "add_to_cart", product_id="sku-a", price=12.0),
        ],
    )
    seen = await collect(bootstrap, "stage-changes", lambda r: r["customer_id"] == anonymous, 2, 30)
    assert [r["to_stage"] for r in seen][-1] == "consideration"
    await produce(bootstrap, "engagement", [event(customer, "app_open", anonymous_id=anonymous)])

    moved = await collect(
        bootstrap,
        "stage-changes",
        lambda r: r["customer_id"] == customer and r["to_stage"] == "consideration",
        1,
        30,
    )
    assert moved, "the visitor's journey carries over"
    actions = await collect(bootstrap, "actions", carts(customer), 1, timeout=30)
    assert actions[0]["payload"]["items"] == [{"product_id": "sku-a", "quantity": 1, "price": 12.0}]
