"""Kafka over TLS: ``kairos publish``, a Faust worker and a plain consumer through TLS only.

Tansu 0.6 cannot serve TLS itself (its ``--cert`` and ``--key`` flags exclude each other),
so a small TLS-terminating proxy stands in front of it and the broker advertises the
proxy's port: every client connection, bootstrap and metadata alike, is TLS with a
verified certificate and a client certificate (mutual TLS). A plaintext client is
refused by the same port, so the traffic below did go through TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from live_stack import BrokerProcess, kairos, make_pki, start, start_tansu, wait_until

from kairos.launcher import LOOPBACK, create_topics, free_port
from stream import topics
from stream.security import kafka_client_kwargs

pytestmark = pytest.mark.integration


class TlsProxy:
    """Accepts TLS on ``port`` and relays the bytes to ``target_port`` in plaintext."""

    def __init__(self, port: int, target_port: int, context: ssl.SSLContext) -> None:
        self.port, self.target_port, self.context = port, target_port, context
        self.loop = asyncio.new_event_loop()
        self.tls_connections = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(5)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, LOOPBACK, self.port, ssl=self.context)
        )
        started.set()
        self.loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tls_connections += 1
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def pki() -> dict[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: cannot make the test certificates")
    return make_pki(Path(tempfile.mkdtemp(prefix="kairos-pki-")))


@pytest.fixture(scope="module")
def tls_broker(pki: dict[str, str]) -> Iterator[tuple[BrokerProcess, TlsProxy]]:
    proxy_port = free_port()
    broker = start_tansu(advertised_port=proxy_port)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca.pem"])
    context.load_cert_chain(pki["server.pem"], pki["server.key"])
    context.verify_mode = ssl.CERT_REQUIRED  # clients must show a certificate of our CA
    proxy = TlsProxy(proxy_port, broker.port, context)
    try:
        yield broker, proxy
    finally:
        proxy.stop()
        broker.stop()


def ssl_env(pki: dict[str, str], proxy: TlsProxy) -> dict[str, str]:
    return {
        "BROKER_URL": f"kafka://{LOOPBACK}:{proxy.port}",
        "KAIROS_KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAIROS_KAFKA_SSL_CAFILE": pki["ca.pem"],
        "KAIROS_KAFKA_SSL_CERTFILE": pki["client.pem"],
        "KAIROS_KAFKA_SSL_KEYFILE": pki["client.key"],
    }


async def test_publish_worker_and_consumer_work_over_tls_only(
    tls_broker: tuple[BrokerProcess, TlsProxy], pki: dict[str, str], tmp_path: Path
) -> None:
    _broker, proxy = tls_broker
    env = ssl_env(pki, proxy)
    bootstrap = f"{LOOPBACK}:{proxy.port}"
    # topics made through TLS too (the launcher's admin client takes the same settings)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        await create_topics(bootstrap, list(topics.ALL), partitions=4)
    customer = f"tls-{uuid.uuid4().hex[:8]}"
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        orjson.dumps(
            {
                "event_id": uuid.uuid4().hex,
                "type": "page_view",
                "customer_id": customer,
                "ts": time.time_ns() // 1_000_000,
                "url": "/",
            }
        )
        + b"\n"
    )
    published = kairos("publish", str(events), env=env)
    assert published.returncode == 0, published.stderr

    config = tmp_path / "triggers.yaml"
    config.write_text("policy:\n  quiet_hours:\n    enabled: false\n")
    worker_env = {
        **env,
        "REDIS_URL": "redis://127.0.0.1:9/0",  # unreachable: the worker runs on without it
        "KAIROS_CONFIG": str(config),
        "KAIROS_APP_ID": f"tls-{uuid.uuid4().hex[:6]}",
        "KAIROS_PARTITIONS": "4",
    }
    worker = start("worker", worker_env)
    consumer = AIOKafkaConsumer(
        topics.ACTIONS,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **kafka_client_kwargs(env),
    )
    await consumer.start()
    try:

        async def welcomed() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            actions = [orjson.loads(m.value) for ms in batches.values() for m in ms]
            return any(a["customer_id"] == customer and a["trigger"] == "welcome" for a in actions)

        await wait_until(welcomed, 90, "the welcome decided over TLS", worker)
    finally:
        await consumer.stop()
        worker.stop()
    assert proxy.tls_connections >= 3  # publish, the worker's clients, this consumer

    plain = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await plain.start()
    await plain.stop()
