"""Related products survive a worker killed with -9: the next owner continues each product's
counts from the published sketches instead of starting over."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from kafka_helpers import produce
from test_recommend_live import CONFIG, view
from workers import Worker, collect, worker_env

from kairos.launcher import Broker

pytestmark = pytest.mark.integration


async def test_counts_learned_before_a_kill_are_kept_and_added_to(
    broker: Broker, bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG)
    env = worker_env(broker.url, redis_url, config, f"rec-kill-{uuid.uuid4().hex[:6]}")
    tag = uuid.uuid4().hex[:8]
    seed, before, after = f"lamp-{tag}", f"shade-{tag}", f"bulb-{tag}"
    lamps = f"lamps-{tag}"  # the seed's category: this test's alone
    first = Worker(env)
    try:
        # before the kill: `before` co-viewed with the seed by 4 customers
        crowd = [view(f"a{i}-{tag}", seed, lamps) for i in range(4)]
        crowd += [view(f"a{i}-{tag}", before, "shades") for i in range(4)]
        await produce(bootstrap, "clickstream", crowd)
        published = await collect(
            bootstrap,
            "recommendations",
            lambda r: isinstance(r.get("r"), dict) and before in r["r"],
            1,
            timeout=40,
        )
        assert published, first.tail()
    finally:
        first.stop(signal.SIGKILL)

    second = Worker(env)
    try:
        # after it: `after` co-viewed by 3 others; both counts must be in the sketch
        crowd = [view(f"b{i}-{tag}", seed, lamps) for i in range(3)]
        crowd += [view(f"b{i}-{tag}", after, "bulbs") for i in range(3)]
        await produce(bootstrap, "clickstream", crowd)
        both = await collect(
            bootstrap,
            "recommendations",
            lambda r: isinstance(r.get("r"), dict) and before in r["r"] and after in r["r"],
            1,
            timeout=40,
        )
        assert both, second.tail()
        shopper = f"shopper-{tag}"
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
    finally:
        second.stop()
    assert actions, second.tail()
    assert actions[0]["payload"]["recommended"] == [before, after]  # 4 co-views before 3
