"""Session fixtures: one memory-only broker and one throwaway Redis for the whole run.

Both start on free loopback ports in well under a second, only when a test asks for them,
and stop at the end of the session. `BROKER_URL` / `REDIS_URL` in the environment point
the fixtures at services that already run instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_helpers import Consumed, consume_all, partition_count, produce, unique_topic

from kairos.launcher import Broker, RedisServer, start_broker, start_redis

__all__ = ["Consumed", "consume_all", "partition_count", "produce", "unique_topic"]


_NEEDS = {
    "broker": "broker",
    "bootstrap": "broker",
    "redis_server": "redis",
    "redis_url": "redis",
}


_UNIT = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they need, so `-m "not broker"` and the like select them."""
    for item in items:
        if _UNIT not in item.path.parents:  # integration, faults, browser
            item.add_marker(pytest.mark.integration)
        for marker in sorted({_NEEDS[f] for f in getattr(item, "fixturenames", ()) if f in _NEEDS}):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with start_broker() as running:
        yield running


@pytest.fixture(scope="session")
def bootstrap(broker: Broker) -> str:
    """`host:port` for Kafka clients."""
    return broker.bootstrap


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with start_redis() as running:
        yield running


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A fresh topic name for this test (the session broker is shared)."""
    return unique_topic(re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:40])
