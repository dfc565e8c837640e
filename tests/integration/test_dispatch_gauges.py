"""On-call gauges: the dispatcher's queue in Redis, and the build every process runs."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY, generate_latest

from channels import schedule
from channels.actions import Action
from channels.schedule import Schedule
from kairos.launcher import free_port
from monitoring import dispatch_gauges
from monitoring.dispatch_gauges import update_dispatch_queue

pytestmark = pytest.mark.integration

NOW = 1_767_225_600_000


@pytest.fixture
async def redis(redis_url: str) -> aioredis.Redis:
    client = aioredis.from_url(redis_url.rsplit("/", 1)[0] + "/11")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_dispatch_queue_counts_due_and_scheduled_entries(redis: aioredis.Redis) -> None:
    queue = Schedule(redis)
    for i, due in enumerate([NOW - 5_000, NOW - 1, NOW, NOW + 1, NOW + 3_600_000]):
        await queue.add(Action(f"a{i}", "c1", "welcome", "email", "send"), due)
    assert await update_dispatch_queue(redis, NOW) == (3, 2)
    assert REGISTRY.get_sample_value("kairos_dispatch_queue", {"state": "due"}) == 3
    assert REGISTRY.get_sample_value("kairos_dispatch_queue", {"state": "scheduled"}) == 2
    taken = await queue.pop_due(NOW, 10)  # leased: their scores move a lease ahead
    assert len(taken) == 3
    assert await update_dispatch_queue(redis, NOW) == (0, 5)


async def test_the_queue_key_is_the_schedules() -> None:
    assert dispatch_gauges.DUE_KEY == schedule.DUE_KEY


async def test_an_unreachable_redis_keeps_the_last_values(redis_url: str) -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert await update_dispatch_queue(dead, NOW) == (-1, -1)
    await dead.aclose()


def test_every_process_exports_its_build() -> None:
    text = generate_latest().decode()
    line = next(x for x in text.splitlines() if x.startswith("kairos_build_info{"))
    assert 'version="0.1.0"' in line and 'python="3.11' in line and line.endswith(" 1.0")
