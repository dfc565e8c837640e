"""stream/app.py overrides or leans on these Faust methods: a Faust upgrade that changes
any of them must be read before it is taken (see the module doc of stream/app.py, and
its last section for the private members state/ and monitoring/ read through it).

Each line is the start of the SHA-256 of the method's source in faust-streaming 0.15.3.
When this fails: read the upstream change, carry what matters into stream/app.py
(or stream/alignment.py), then record the new hash here.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from importlib.metadata import version
from pathlib import Path

import pytest

from stream.app import _TableManager, create_app
from stream.settings import Settings

PINNED_VERSION = "0.15.3"

PINNED = {
    "faust.transport.consumer:Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.consumer:Consumer._commit_tps": "a20e230b05ae8b15",
    "faust.transport.consumer:Consumer.seek": "b86a9fe05f956b30",
    "faust.transport.consumer:Consumer.on_partitions_revoked": "d04b7ae72c6fc206",
    "faust.transport.consumer:Consumer._filter_committable_offsets": "dc5e9baf5d994485",
    "faust.transport.consumer:Consumer.perform_seek": "0e8c130ff4b0afd8",
    "faust.transport.consumer:Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "faust.transport.consumer:Consumer._add_gap": "4df2573ded7c1c2c",
    "faust.transport.consumer:Consumer._commit_offsets": "1a69799041188441",
    "faust.transport.consumer:Consumer._handle_attached": "48efe89d6c633cf6",
    "faust.transport.consumer:Consumer.getmany": "4b168d84882a70d6",  # _Consumer._fetch
    "faust.transport.consumer:Consumer._wait_next_records": "6218e1969a636b3f",
    # _Consumer._ack_handled keeps upstream's ack bookkeeping
    "faust.transport.consumer:Consumer.ack": "5fcf41cf45153475",
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea75083",
    "faust.transport.drivers.aiokafka:Consumer.seek_to_committed": "f1d483b861b0328b",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": (
        "c2701bfc3e6f6cad"
    ),
    "faust.app.base:App._new_transport": "42db531312dd776f",
    # The group member id kept for a successor (stream/membership.py)
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.on_start": "38b4e8bd1e10723a",
    "faust.transport.consumer:ConsumerThread.on_partitions_assigned": "e59e8dda43724bd4",
    # Started without its 1 s sleep (_TableManager.on_start repeats the rest of it)
    "faust.tables.manager:TableManager.on_start": "365dd25fbc0e0684",
    # Private members read through the end of stream/app.py: where each is made and kept.
    # Store._key_partition (memory_store_partitions)
    "faust.stores.memory:Store.__post_init__": "e59c82f3785458b2",
    "faust.stores.memory:Store._create_batch_iterator": "b082c8bcc0403823",
    "faust.stores.memory:Store.on_recovery_completed": "a00bef343e139602",
    # Store._db_for_partition (rocksdb_partition_db); the offset record that rocksdb_values
    # steps over, written under Store.offset_key into each partition's database
    "faust.stores.rocksdb:Store._db_for_partition": "cb7e67d5f9efc4bc",
    "faust.stores.rocksdb:Store.set_persisted_offset": "b4c811926678346e",
    # Consumer._committed_offset (committed_offsets): made in __init__, kept by perform_seek,
    # _commit_offsets and on_partitions_revoked (above)
    "faust.transport.consumer:Consumer.__init__": "302410d59e6972d1",
    # aiokafka's position of a partition, read by _Consumer._check_positions: where it is
    # kept, and what moves it (records handed out, a seek)
    "aiokafka.consumer.subscription_state:SubscriptionState._assigned_state": "37b820a2efaa841c",
    "aiokafka.consumer.subscription_state:TopicPartitionState.consumed_to": "c7b8f0f99ce9185e",
    "aiokafka.consumer.fetcher:Fetcher.seek_to": "f0ba6aba6c22ef83",
    # _Consumer._fetch hands aiokafka's records to the handler, each given a ``tp``
    # attribute: a dataclass without slots takes it
    "aiokafka.structs:ConsumerRecord": "1d35bd6c8da0182e",
}

# Imported at collection, outside the no-process guard: importing one of them calls
# platform.architecture(), which runs `file` (the test alone failed on that).
for _path in PINNED:
    importlib.import_module(_path.partition(":")[0])


def source_hash(path: str) -> str:
    module, _, attribute = path.partition(":")
    obj: object = importlib.import_module(module)
    for name in attribute.split("."):
        obj = getattr(obj, name)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def test_faust_is_the_pinned_version() -> None:
    assert version("faust-streaming") == PINNED_VERSION


def test_the_upstream_methods_we_override_or_lean_on_are_unchanged() -> None:
    changed = {path: source_hash(path) for path in PINNED if source_hash(path) != PINNED[path]}
    assert changed == {}, "upstream changed: read it, then update stream/app.py and PINNED"


def test_the_app_uses_our_table_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIROS_DATA_DIR", str(tmp_path))
    app = create_app(Settings())
    assert type(app.tables).on_start is _TableManager.on_start
