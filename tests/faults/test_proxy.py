"""The fault proxy: every broker connection goes through it, and its faults bite.

A broker started by the harness advertises the proxy's port, so a client that
bootstraps from the broker's own port still ends up talking through the proxy; a cut
stops a producer until ``restore()``, while the test's own (spared) clients carry on.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from .proxy import FaultProxy
from .services import Broker

pytestmark = pytest.mark.integration


async def producer(bootstrap: str, client_id: str = "kairos-like") -> AIOKafkaProducer:
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=2_000, acks="all"
    )
    await p.start()
    return p


async def sends(p: AIOKafkaProducer, within_s: float = 4.0) -> bool:
    """Whether one record is acknowledged within ``within_s``."""
    try:
        await asyncio.wait_for(p.send_and_wait("proxy-test", b"x", key=b"k"), within_s)
    except (KafkaError, TimeoutError):
        return False
    return True


async def test_a_client_bootstrapped_on_the_broker_port_is_sent_to_the_proxy(
    proxied_broker: tuple[Broker, FaultProxy],
) -> None:
    broker, proxy = proxied_broker
    p = await producer(f"127.0.0.1:{broker.port}")  # not the proxy: the metadata decides
    try:
        assert {(b.host, b.port) for b in p.client.cluster.brokers()} == {("127.0.0.1", proxy.port)}
        assert await sends(p)
    finally:
        await p.stop()
    assert proxy.stats.accepted >= 1
    assert proxy.stats.bytes_up > 0  # the produce request went through the proxy


async def test_a_cut_stops_a_producer_until_restore_and_spares_the_tests_own_clients(
    proxied_broker: tuple[Broker, FaultProxy],
) -> None:
    _, proxy = proxied_broker
    kairos = await producer(proxy.address)
    ours = await producer(proxy.address, client_id="faults-publisher")
    try:
        assert await sends(kairos) and await sends(ours)
        await proxy.cut()
        assert not await sends(kairos), "a producer sent through a cut proxy"
        assert await sends(ours), "the test's own producer must not be cut off"
        await proxy.restore()
        assert await sends(kairos, within_s=15), "the producer did not recover after restore"
    finally:
        await kairos.stop()
        await ours.stop()
    assert proxy.stats.aborted >= 1


async def test_pause_holds_bytes_until_restore(
    proxied_broker: tuple[Broker, FaultProxy],
) -> None:
    _, proxy = proxied_broker
    p = await producer(proxy.address)
    try:
        assert await sends(p)
        proxy.pause()
        pending = asyncio.ensure_future(p.send_and_wait("proxy-test", b"held", key=b"k"))
        await asyncio.sleep(1.0)
        assert not pending.done(), "a record was acknowledged through a paused proxy"
        await proxy.restore()
        await asyncio.wait_for(pending, 10)
    finally:
        await p.stop()
