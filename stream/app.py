"""The Faust app, with the two changes to Faust's Kafka driver that the hot path needs.

1. Faust hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer; on a
   broker that does not wake parked fetches that is a 1.2-1.5 s latency floor.
   ``KAIROS_FETCH_MAX_WAIT_MS`` (default 100) replaces it.
2. Committing offsets first flushes the worker's batched state and outputs
   (``Runtime.flush``), so a committed offset never runs ahead of its effects.
3. The consumer's drain loop hands records to the conductor one getmany() batch
   at a time. Faust wraps *every* record's callback in ``Service.wait_first``
   (four tasks, an ``asyncio.wait`` and three cancellations per record, so a
   rebalance can interrupt a callback blocked on flow control); here that guard
   is kept but taken once per batch, which is where Faust's per-event asyncio
   scheduling went (bench/FINDINGS.md has the numbers).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import faust
from faust.transport import consumer as faust_consumer
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

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's drain loop (faust/transport/consumer.py) with the per-record guard per batch.

        A suspend (rebalance) cancels the batch's delivery task, as Faust cancels the
        record's: the rest of that batch is dropped, and is fetched again after the
        consumer seeks back to the committed offsets.
        """
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(faust_consumer.CONSUMER_FETCHING)
                batch = [item async for item in self.getmany(timeout=1.0)]
                await self.sleep(0)
                if batch and not self.should_stop:
                    await self.wait_first(self._deliver(batch), self.suspend_flow.wait())
                self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)

    async def _deliver(self, batch: list[tuple[Any, Any]]) -> None:
        """The per-record part of Faust's drain loop, awaiting the callback directly."""
        callback = self.callback
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        since_yield = 0
        for tp, message in batch:
            since_yield += 1
            if since_yield > 100:  # as Faust: let other tasks run within a long batch
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            r_offset = read_offset[tp]
            if r_offset is None or offset >= r_offset:
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                await callback(message)
                read_offset[tp] = offset


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
    datadir = os.path.join(settings.data_dir, settings.app_id)
    os.makedirs(datadir, exist_ok=True)  # Faust creates only the last level
    app = KairosApp(
        settings.app_id,
        broker=settings.broker_url,
        store=settings.store,
        datadir=datadir,
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


def raw_topics(app: KairosApp, *names: str) -> Any:
    """Topics read as raw bytes: records are decoded at the edge, bad ones become values."""
    return app.topic(
        *names,
        key_serializer="raw",
        value_serializer="raw",
        partitions=app.kairos_settings.partitions,
    )
