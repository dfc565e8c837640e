"""A worker stopped or killed while a cart deadline is pending: the deadline fires exactly once.

Its own module: the shared worker of test_worker.py must not be running here, since it
would process these customers' events too.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest
from kafka_helpers import produce
from test_worker import CONFIG, carts, event
from workers import Worker, collect, worker_env

from core.ids import action_id
from kairos.launcher import Broker

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("store", "stop_signal"),
    [
        ("memory://", signal.SIGTERM),
        ("memory://", signal.SIGKILL),
        ("rocksdb://", signal.SIGKILL),
    ],
    ids=["stop", "crash", "crash-rocksdb"],
)
async def test_a_pending_cart_deadline_survives_a_worker_restart_and_fires_once(
    broker: Broker, bootstrap: str, redis_url: str, tmp_path: Path, store: str, stop_signal: int
) -> None:
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG.format(delay="10s"))
    env = worker_env(broker.url, redis_url, config, f"restart-{uuid.uuid4().hex[:6]}")
    env.update(KAIROS_STORE=store, KAIROS_DATA_DIR=str(tmp_path / "data"))
    c = f"rs-{uuid.uuid4().hex[:8]}"
    first = Worker(env)
    try:
        first.wait_ready()  # the deadline runs from the event: not from before the start
        await produce(
            bootstrap, "clickstream", [event(c, "add_to_cart", product_id="sku-r", price=3.0)]
        )
        seen = await collect(bootstrap, "stage-changes", lambda r: r["customer_id"] == c, 1, 40)
        assert seen, f"the first worker never processed the event\n{first.tail()}"
        await asyncio.sleep(1.5)  # past a state flush and an offset commit
    finally:
        first.stop(stop_signal)
    assert not await collect(bootstrap, "actions", carts(c), 1, timeout=0.5), "not due yet"

    second = Worker(env)
    try:
        assert await collect(bootstrap, "actions", carts(c), 1, timeout=40), second.tail()
        await asyncio.sleep(3)  # would a second copy come?
        actions = await collect(bootstrap, "actions", carts(c), 2, timeout=2)
    finally:
        second.stop()
    assert len(actions) == 1, second.tail()
    assert actions[0]["action_id"] == action_id("abandoned_cart", c, (1, 1))
    if store == "rocksdb://":  # small write buffers: a restart replays little write-ahead log
        options = list((tmp_path / "data").rglob("OPTIONS-*"))
        assert options and all(
            "write_buffer_size=16777216" in path.read_text() for path in options
        ), options


async def test_a_worker_restarted_after_kill_9_removes_its_predecessor_from_the_group(
    broker: Broker, bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    # The group does not wait out the killed member's session (stream/membership.py; on the
    # broker itself: tests/integration/test_group_membership.py). The restarted worker serves
    # every partition.
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG.format(delay="10s"))
    env = worker_env(broker.url, redis_url, config, f"rejoin-{uuid.uuid4().hex[:6]}")
    env.update(KAIROS_DATA_DIR=str(tmp_path / "data"))
    first = Worker(env)
    env["KAIROS_METRICS_PORT"] = str(first.metrics_port)  # the same process, restarted
    try:
        c = f"rj-{uuid.uuid4().hex[:8]}"
        await produce(bootstrap, "clickstream", [event(c, "add_to_cart", product_id="sku-j")])
        assert await collect(bootstrap, "stage-changes", lambda r: r["customer_id"] == c, 1, 40)
    finally:
        first.stop(signal.SIGKILL)
    second = Worker(env)
    try:
        customers = [f"rj-{uuid.uuid4().hex[:8]}" for _ in range(8)]  # on every partition
        await produce(
            bootstrap,
            "clickstream",
            [event(c, "add_to_cart", product_id="sku-j") for c in customers],
        )
        wanted = set(customers)
        seen = await collect(
            bootstrap, "stage-changes", lambda r: r["customer_id"] in wanted, len(wanted), 40
        )
        assert {r["customer_id"] for r in seen} == wanted, second.tail()
        assert "removed the previous member" in second.tail(400), second.tail()
    finally:
        second.stop()
