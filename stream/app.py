"""The Faust app, with the two changes to Faust's Kafka driver that the hot path needs.

1. Faust hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer; on a
   broker that does not wake parked fetches that is a 1.2-1.5 s latency floor.
   ``KAIROS_FETCH_MAX_WAIT_MS`` (default 100) replaces it.
2. Committing offsets first flushes the worker's batched state and outputs
   (``Runtime.flush``), so a committed offset never runs ahead of its effects.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream.settings import Settings


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes this attribute to its Fetcher at start(); no Faust setting reaches it.
        consumer._fetch_max_wait_ms = self.app.kairos_settings.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        runtime = getattr(self.app, "kairos_runtime", None)
        if runtime is not None:
            await runtime.flush()
        return await super().commit(topics, start_new_transaction)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class KairosApp(faust.App):
    kairos_settings: Settings
    kairos_runtime: Any = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> KairosApp:
    # aiokafka logs at DEBUG level regardless of the worker's -l; silencing it is +15%.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    app = KairosApp(
        settings.app_id,
        broker=settings.broker_url,
        store=settings.store,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=settings.commit_interval,
        broker_request_timeout=max(30.0, settings.session_timeout + 5),
        stream_wait_empty=False,
        web_enabled=False,
        table_cleanup_interval=3600.0,
    )
    app.kairos_settings = settings
    return app
