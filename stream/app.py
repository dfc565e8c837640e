"""The Faust app, with the changes to Faust's Kafka driver that Kairos needs.

Every use of Faust's private methods and members is in this module (the last section
serves state/local_store.py and monitoring/lag.py). What each replaces and why:

1. ``_ConsumerThread._create_worker_consumer``: Faust hard-codes
   ``fetch_max_wait_ms=1500``; on a broker that does not wake parked fetches that is
   a 1.2-1.5 s latency floor. ``KAIROS_FETCH_MAX_WAIT_MS`` (default 100) replaces it.
2. ``_Consumer._commit_tps``: between choosing the offsets to commit and committing
   them, ``app.kairos_before_commit`` persists every effect of the records they
   cover (the worker's checkpoint, ``agents/checkpoint.py``), so a committed offset
   never runs ahead of its effects; if that fails, nothing is committed.
3. ``_Consumer._drain_messages``: records reach the conductor one fetch at a time,
   through ``_Consumer._fetch`` (upstream's ``getmany``, a partition's records at
   once). Faust wraps *every* record's callback in ``Service.wait_first`` (four
   tasks, an ``asyncio.wait`` and three cancellations per record, so a rebalance
   can interrupt a callback blocked on flow control); here that guard is kept but
   taken once per batch (bench/FINDINGS.md has the numbers). Input
   records pass through ``stream/alignment.py``: per partition in event-time order
   across the co-partitioned topics, and never past an offset that was not handed
   on. Upstream records an offset jump as a "gap" that commits pass over; after a
   rebalance, stale fetches made such jumps and events were committed unapplied.
   Records of a partition wait until the runtime has restored its state
   (``app.kairos_accepting``) and until the consumer has sought it to the committed
   offset; ``seek_to_committed`` also lists end offsets, so the aligner knows which
   topics have records to wait for. A delivery stops when a rebalance begins (as
   Faust's ``getmany`` drops the rest of a fetch); once a second the loop compares
   aiokafka's positions with what reached the aligner and seeks back over any
   difference (``Aligner.check``).
   Records for ``kairos_handler`` stay aiokafka's (no Faust ``ConsumerMessage``), and
   a handled record is acked with upstream's bookkeeping (``_acked``, ``_n_acked``)
   but without its lock: commits choose offsets from it as ever.
4. ``AIOKafkaConsumerThread.on_start`` and ``ConsumerThread.on_partitions_assigned``:
   the process keeps its group member id, and its successor removes that member before
   joining, so a restart after kill -9 does not wait out a session (stream/membership.py).
5. ``TableManager.on_start``: Faust sleeps 1 s there so that tables declared after the
   app starts are still recovered; ours is declared before (agents/customers.py), and
   every start and restart waited that second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from itertools import chain
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError
from faust.tables.manager import TableManager
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream.alignment import UNKNOWN, Aligner
from stream.membership import MemberFile, leave_for_predecessor
from stream.security import faust_broker_credentials
from stream.settings import Settings

log = logging.getLogger(__name__)


# (topic, partition, offset, key, value) of one record
Handler = Callable[[str, int, int, bytes | None, bytes | None], None]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes this attribute to its Fetcher at start(); no Faust setting reaches it.
        consumer._fetch_max_wait_ms = _kairos(self.app).kairos_settings.fetch_max_wait_ms
        return consumer

    async def on_start(self) -> None:
        await super().on_start()  # the consumer is bootstrapped; it joins once subscribed
        member = _kairos(self.app).kairos_member_file
        if member is not None and not self.app.client_only:
            client = self._ensure_consumer()._client  # aiokafka's, with our TLS/SASL
            await leave_for_predecessor(client, self.app.conf.id, member)

    async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        member = _kairos(self.app).kairos_member_file
        if member is not None:
            member.remember(self._ensure_consumer()._coordinator.member_id)
        await super().on_partitions_assigned(assigned, generation_id)


SETTLE_S = 1.0  # after a seek, a partition counts as behind for this long (Aligner.settled)
CHECK_POSITIONS_S = 1.0  # how often the drain loop compares positions (Aligner.check)
END_OFFSETS_TIMEOUT_S = 5.0


class _Consumer(faust_aiokafka.Consumer):
    _aligner: Aligner | None = None
    _records_at: float = 0.0  # when a fetch last brought records, epoch ms
    _sought_ms: dict[Any, float] | None = None  # per partition: its last seek, epoch ms

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def aligner(self) -> Aligner:
        if self._aligner is None:
            app = _kairos(self.app)
            self._aligner = Aligner(
                app.kairos_aligned_topics, app.kairos_settings.align_idle_ms, require_seek=True
            )
        return self._aligner

    # --- offsets never run ahead of effects ----------------------------------------
    async def _commit_tps(self, tps: Any, start_new_transaction: bool) -> bool:
        """Faust's commit with the durability steps between choosing and committing offsets.

        The offsets are chosen first (they cover records the agent had finished with),
        then ``before_commit`` persists every effect of those records and more
        (``agents/checkpoint.py``), then they are committed. If persisting fails, the
        offsets are not committed and are offered again at the next commit.
        """
        tps = list(tps)
        acked = {tp: list(self._acked[tp]) for tp in tps}
        offsets = self._filter_committable_offsets(tps)
        before_commit = _kairos(self.app).kairos_before_commit
        try:
            if before_commit is not None:
                await before_commit()
        except Exception as exc:
            for tp, offsets_acked in acked.items():  # _filter_committable_offsets took them
                merged = sorted(set(offsets_acked).union(self._acked[tp]))
                self._acked[tp][:] = merged
                self._acked_index[tp].update(offsets_acked)
            log.warning("not committing offsets: effects not persisted (%s)", exc)
            return False
        if not offsets:
            return False
        await self._handle_attached(offsets)
        return await self._commit_offsets(offsets, start_new_transaction=start_new_transaction)

    # --- positions: every seek and revocation reaches the aligner -----------------
    async def seek(self, partition: Any, offset: int) -> None:
        await super().seek(partition, offset)
        await self._after_seek(faust_consumer.ensure_TP(partition), offset)

    async def _after_seek(self, tp: Any, offset: int | None) -> None:
        """Tell the aligner; move the consumer back over records it did not take before."""
        back = self.aligner.seek(tp, offset)
        if back is not None:
            log.info("%s: records fetched before the seek to %s: reading from %d", tp, offset, back)
            await super().seek(tp, back)
        if self._sought_ms is None:
            self._sought_ms = {}
        self._sought_ms[tp] = time.time() * 1000

    def _highwater(self, tp: Any) -> int | None:
        """``tp``'s high watermark for the aligner; ``UNKNOWN`` until a fetch response has
        described ``tp`` since its last seek. (After a rebalance, a customer's order went
        through before their first visit on a topic whose end was not known yet: the
        fault soak's broker_cut, once in 100 runs.)
        """
        client = self._thread._ensure_consumer()  # aiokafka's: it knows when it last polled
        try:
            polled = client.last_poll_timestamp(tp)
            highwater: int | None = client.highwater(tp)
        except AssertionError:  # revoked meanwhile
            return None
        sought = (self._sought_ms or {}).get(tp, 0.0)
        return UNKNOWN if polled is None or polled < sought else highwater

    async def seek_to_committed(self) -> Any:
        committed = await super().seek_to_committed()
        aligner = self.aligner
        for tp, offset in committed.items():
            position = offset if offset is not None and offset > 0 else None
            await self._after_seek(faust_consumer.ensure_TP(tp), position)
        # A new assignment catches up: the end offsets say which topics have records to
        # wait for before a fetch has brought any (then the high watermarks take over).
        aligned = [tp for tp in committed if tp.topic in aligner.aligned_topics]
        if aligned:
            try:
                ends = await asyncio.wait_for(self.highwaters(*aligned), END_OFFSETS_TIMEOUT_S)
            except Exception as exc:  # aligning on fetched high watermarks alone
                log.info("end offsets not listed after the seek (%s)", exc)
            else:
                for tp, end in ends.items():
                    if end is not None:
                        aligner.ends_at(faust_consumer.ensure_TP(tp), end)
        return committed

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.aligner.forget(set(revoked))
        await super().on_partitions_revoked(revoked)

    def input_positions(self, partition: int) -> list[tuple[str, int | None, int | None]]:
        """``(topic, committed offset, high watermark)`` of each input topic's ``partition``.

        The high watermark is None when it is not known to be current: never fetched, or
        not refreshed by a fetch response for ``stale_ms`` while no records came either
        (the broker unreachable). Only a current one can say a partition has no unread
        input. (A worker too busy to take fetched records also sees its fetcher stop
        polling: that alone must not make every partition "behind".)
        """
        aligner = self.aligner
        client = self._thread._ensure_consumer()  # aiokafka's: it knows when it last polled
        settings = _kairos(self.app).kairos_settings
        stale_ms = max(2_000, 20 * settings.fetch_max_wait_ms)
        now = time.time() * 1000
        positions = []
        for tp in self.assignment():
            if tp.partition != partition or tp.topic not in aligner.aligned_topics:
                continue
            try:
                polled = client.last_poll_timestamp(tp)
                # Not polled lately: the broker is out of reach, unless records keep coming
                # and the fetcher only waits for us to take them (a busy worker).
                fresh = now - max(polled or 0, self._records_at) <= stale_ms
                current = polled is not None and fresh and aligner.settled(tp, SETTLE_S)
                highwater = client.highwater(tp) if current else None
            except (AssertionError, KeyError):  # revoked meanwhile
                highwater = None
            if highwater is not None:  # Tansu under-reports it: fetched records count too
                highwater = max(highwater, aligner.fetched(tp) or 0)
            positions.append((tp.topic, aligner.floor(tp), highwater))
        return positions

    # --- the drain loop ------------------------------------------------------------
    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's drain loop (faust/transport/consumer.py), handing records on through the aligner.

        Differences from upstream: the guard against a rebalance interrupting a
        callback blocked on flow control is taken once per fetched batch, not per
        record (bench/FINDINGS.md); input records go through ``stream/alignment.py``
        (event-time order across co-partitioned topics, no offset ever skipped: a
        jump is sought back, never recorded as a gap that a commit would pass over).
        """
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        aligner = self.aligner
        check_at = 0.0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(faust_consumer.CONSUMER_FETCHING)
                if time.monotonic() >= check_at:  # nothing fetched is on its way now
                    check_at = time.monotonic() + CHECK_POSITIONS_S
                    await self._check_positions()
                # Records held back (a lagging partition, a state not restored yet): look
                # again soon.
                timeout = 0.1 if aligner.waiting() or aligner.held_back else 1.0
                batch = await self._fetch(timeout)
                if batch:
                    self._records_at = time.time() * 1000
                await self.sleep(0)
                if not self.should_stop:
                    await self.wait_first(self._deliver(batch), self.suspend_flow.wait())
                self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:  # upstream logs before the fetcher dies with it
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)

    async def _check_positions(self) -> None:
        """Seek back over records the consumer handed out that never reached the aligner."""
        client = self._thread._ensure_consumer()  # aiokafka's
        for tp in self.aligner.sought():
            try:
                state = client._subscription._assigned_state(tp)
            except (AssertionError, IllegalStateError):  # revoked, or a rebalance under way
                continue
            position = state.position if state.has_valid_position else None
            back = self.aligner.check(tp, position)
            if back is not None:
                log.info(
                    "%s: consumer at %s, records from %d never arrived: seeking back",
                    tp,
                    position,
                    back,
                )
                await self.seek(tp, back)

    async def _fetch(self, timeout: float) -> dict[Any, list[Any]]:
        """Upstream's ``getmany``, a partition's records at a time instead of one by one.

        Upstream yields each record from an async generator, asking for the partition's
        high watermark and checking the flow and the generation each time (~4% of a
        worker's time per event). The flow and the generation are checked before each
        record is handed on (``_deliver``); records left then are fetched again
        (``Aligner.check``), as those upstream drops are.
        """
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return {}
        if not self.flow_active:  # as upstream: back to the committed offsets
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return {}
        app = _kairos(self.app)
        handled = app.kairos_aligned_topics if app.kairos_handler is not None else ()
        to_message, track = self._to_message, app.monitor.track_tp_end_offset
        batch = {}
        for tp, fetched in records.items():
            if active is None or tp in active or tp in self._buffered_partitions:
                track(tp, self.highwater(tp))
                if tp.topic in handled:
                    # For the handler, aiokafka's own records (timestamps in ms), told
                    # their TP: a Faust ConsumerMessage per record cost ~3% of the time.
                    for record in fetched:
                        record.tp = tp
                    batch[tp] = fetched
                else:
                    batch[tp] = [to_message(tp, record) for record in fetched]
        return batch

    async def _deliver(self, batch: dict[Any, list[Any]]) -> None:
        aligner = self.aligner
        aligned = aligner.aligned_topics
        fetched: dict[Any, list[Any]] = {}
        for tp, messages in batch.items():
            if tp.topic in aligned:
                fetched[tp] = messages
            else:  # table changelogs during recovery: as upstream
                for message in messages:
                    await self._deliver_unaligned(tp, message)
        for tp, messages in fetched.items():
            jump = aligner.add(tp, messages)
            if jump is not None:
                log.info(
                    "%s: fetched offset %d, expected %d: seeking back", tp, jump.got, jump.expected
                )
                await self.seek(tp, jump.expected)
        app = _kairos(self.app)
        generation = app.consumer_generation_id
        handler = app.kairos_handler
        callback = self.callback
        read_offset = self._read_offset
        commit_every = self._commit_every
        suspended = self.suspend_flow.is_set
        ack = self._ack_handled
        since_yield = 0
        for message in aligner.ready(self._highwater, app.kairos_accepting):
            since_yield += 1
            if since_yield > 100:  # as Faust: let other tasks run within a long batch
                await asyncio.sleep(0)
                since_yield = 0
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            if suspended() or app.consumer_generation_id != generation:
                return  # a rebalance began (or ended) in an await above: fetched again later
            if handler is None:
                await callback(message)  # Faust's way: conductor, channel queue, agent
            else:
                handler(
                    message.topic, message.partition, message.offset, message.key, message.value
                )
                ack(message.tp, message.offset)  # committable (after a checkpoint)
            aligner.delivered(message)
            read_offset[message.tp] = message.offset

    def _ack_handled(self, tp: Any, offset: int) -> None:
        """Upstream's ``ack`` bookkeeping for a handled record, which has no message to mark,
        and without its lock: the handler and commits run on the event loop's thread."""
        committed = self._committed_offset[tp]
        if committed is None or offset >= committed:
            acked_index = self._acked_index[tp]
            if offset not in acked_index:
                acked_index.add(offset)
                self._acked[tp].append(offset)
                self._n_acked += 1

    async def _deliver_unaligned(self, tp: Any, message: Any) -> None:
        """Upstream's per-record step, for topics the aligner does not handle."""
        offset = message.offset
        r_offset = self._read_offset[tp]
        if r_offset is None or offset >= r_offset:
            gap = offset - (r_offset or 0)
            if gap > 1 and r_offset and self.app.topics.acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            await self.callback(message)
            self._read_offset[tp] = offset


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class _TableManager(TableManager):
    async def on_start(self) -> None:  # upstream: await self.sleep(1.0), then the same
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class KairosApp(faust.App):
    kairos_settings: Settings
    # Persists every effect of the records handled so far; runs before each offset commit.
    kairos_before_commit: Callable[[], Awaitable[Any]] | None = None
    # Input topics read in event-time order per partition (stream/alignment.py).
    kairos_aligned_topics: frozenset[str] = frozenset()
    # Handles one aligned input record, synchronously, in place of Faust's conductor,
    # channel queue and agent stream (None: records go through Faust's agent as usual).
    kairos_handler: Handler | None = None
    # Whether a partition's records may be handled yet (its state restored); None: all.
    kairos_accepting: Callable[[int], bool] | None = None
    # Where this process keeps its group member id (stream/membership.py).
    kairos_member_file: MemberFile | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def _kairos(app: Any) -> KairosApp:
    """Faust types ``self.app`` as its own AppT; ours carries the kairos_* attributes."""
    return cast(KairosApp, app)


def input_positions(app: KairosApp, partition: int) -> list[tuple[str, int | None, int | None]]:
    """The worker consumer's view of ``partition``'s input (``_Consumer.input_positions``)."""
    return cast(_Consumer, app.consumer).input_positions(partition)


def create_app(settings: Settings, instance: str | None = None) -> KairosApp:
    """The Faust app; ``instance`` names this process among those sharing the data
    directory (by default ``worker-<metrics port>``), for stream/membership.py."""
    # aiokafka logs at DEBUG level regardless of the worker's -l; silencing it is +15%.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    datadir = os.path.join(settings.data_dir, settings.app_id)
    os.makedirs(datadir, exist_ok=True)  # Faust creates only the last level
    app = KairosApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_broker_credentials(),  # KAIROS_KAFKA_*: SASL / TLS
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
        table_standby_replicas=settings.standby_replicas,
        TableManager=_TableManager,
    )
    app.kairos_settings = settings
    name = instance or f"worker-{settings.metrics_port}"
    app.kairos_member_file = MemberFile(Path(datadir) / f"member-{name}.id")
    return app


def raw_topics(app: KairosApp, *names: str) -> Any:
    """Topics read as raw bytes: records are decoded at the edge, bad ones become values."""
    return app.topic(
        *names,
        key_serializer="raw",
        value_serializer="raw",
        partitions=app.kairos_settings.partitions,
    )


# --- Faust internals used by state/ and monitoring/ ---
# Faust has no public API for these; each is read here only, and its upstream source is
# pinned in tests/unit/test_faust_pins.py so an upgrade that changes it is noticed.


# Replaces store._key_partition: Faust's key -> partition index, which our writes must fill.
def memory_store_partitions(store: Any) -> MutableMapping[Any, int]:
    return cast(MutableMapping[Any, int], store._key_partition)


# Replaces store._db_for_partition: Faust's get/set need a current event; timers have none.
def rocksdb_partition_db(store: Any, partition: int) -> Any:
    return store._db_for_partition(partition)


# Replaces store._visible_items: a partition's values without Faust's changelog-offset
# record (set_persisted_offset writes it into the same database). A restart reads every
# stored customer through this: the keys below the offset key, then those above, as two
# of rocksdict's own iterators, cost no Python frame per value as a generator would.
def rocksdb_values(store: Any, db: Any) -> Iterator[bytes]:
    import rocksdict  # the optional extra: only a rocksdb:// store calls this

    offset_key: bytes = store.offset_key
    below = rocksdict.ReadOptions()
    below.set_iterate_upper_bound(offset_key)
    return chain(db.values(read_opt=below), db.values(from_key=offset_key + b"\0"))


# Replaces consumer._committed_offset: the lag gauge needs it; Faust tracks it, exposes none.
def committed_offsets(consumer: Any) -> Mapping[Any, int | None]:
    return cast(Mapping[Any, int | None], consumer._committed_offset)
