"""Redis down under the dispatcher: actions wait (counted as Redis errors), none is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
import pytest
from kafka_helpers import produce
from workers import Worker, collect, worker_env

from kairos.launcher import Broker, free_port, start_redis

pytestmark = pytest.mark.integration


def action(action_id: str, customer: str) -> tuple[bytes, bytes]:
    record = {
        "action_id": action_id,
        "trigger": "nps_detractor",
        "customer_id": customer,
        "channel": "slack",
        "decided_at": time.time_ns() // 1_000_000,
        "status": "send",
        "reason": "test",
        "payload": {"score": 2, "kind": "nps"},
        "source_event_ids": ["e1"],
    }
    return customer.encode(), orjson.dumps(record)


async def test_an_action_read_while_redis_is_down_is_delivered_when_it_returns(
    broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    redis = start_redis(port=port)
    config = tmp_path / "triggers.yaml"
    config.write_text("policy:\n  quiet_hours:\n    enabled: false\n")
    metrics_port = free_port()
    env = worker_env(broker.url, redis.url, config, f"outage-{uuid.uuid4().hex[:6]}")
    env.update(
        KAIROS_CHANNEL_OVERRIDE="console",
        KAIROS_DISPATCHER_METRICS_PORT=str(metrics_port),
        KAIROS_METRICS_PORT=str(metrics_port),
        KAIROS_DISPATCH_TICK="0.1",
    )
    dispatcher = Worker(env, command="dispatcher")
    try:
        warm = f"act-warm-{uuid.uuid4().hex[:6]}"
        await produce(broker.bootstrap, "actions", [action(warm, "c-warm")])
        assert await collect(
            broker.bootstrap, "deliveries", lambda r: r["action_id"] == warm, 1, 40
        )

        redis.stop()
        during = f"act-out-{uuid.uuid4().hex[:6]}"
        await produce(broker.bootstrap, "actions", [action(during, "c-out")])
        dispatcher.wait_metric("kairos_redis_errors_total", 1, timeout=20)
        assert not await collect(
            broker.bootstrap, "deliveries", lambda r: r["action_id"] == during, 1, 1
        )

        redis = start_redis(port=port)
        got = await collect(
            broker.bootstrap, "deliveries", lambda r: r["action_id"] == during, 1, 30
        )
        assert [d["outcome"] for d in got] == ["delivered"], dispatcher.tail()
        await asyncio.sleep(1)
        dispatcher.check_alive()
    finally:
        dispatcher.stop()
        redis.stop()
