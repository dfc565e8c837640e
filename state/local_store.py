"""The worker's local copy of the customer table, under Faust's memory or RocksDB store.

Faust's own table API finds a key's partition from the event being processed,
which timers and batched flushes do not have; these adapters take the
partition explicitly. Faust still owns the stores: it opens them, restores them
from the changelog on assignment and (RocksDB) remembers how far it read, which
:meth:`LocalStore.persisted` keeps up to date so a restart reads only what is new.
The stores' private members this needs are read through ``stream/app.py``, the one
module that touches Faust's internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from stream.app import memory_store_partitions, rocksdb_partition_db, rocksdb_values


class LocalStore(Protocol):
    def get(self, partition: int, key: bytes) -> bytes | None: ...
    def put(self, partition: int, key: bytes, value: bytes) -> None: ...
    def values(self, partition: int) -> Iterator[bytes]: ...
    def persisted(self, changelog: str, partition: int, offset: int) -> None: ...


class InMemory:
    """``memory://``: a dict, plus Faust's key -> partition index."""

    def __init__(self, store: MemoryStore) -> None:
        self._data = store.data
        self._partition_of = memory_store_partitions(store)

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self._data[key] = value
        self._partition_of[key] = partition

    def values(self, partition: int) -> Iterator[bytes]:
        data = self._data
        for key in [k for k, p in self._partition_of.items() if p == partition]:
            value = data.get(key)
            if value:
                yield value

    def persisted(self, changelog: str, partition: int, offset: int) -> None:
        """Nothing survives a restart in memory: recovery always reads the whole changelog."""


class RocksDB:
    """``rocksdb://``: one database per partition, as Faust lays them out."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def get(self, partition: int, key: bytes) -> bytes | None:
        return rocksdb_partition_db(self._store, partition).get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        rocksdb_partition_db(self._store, partition).put(key, value)

    def values(self, partition: int) -> Iterator[bytes]:
        db = rocksdb_partition_db(self._store, partition)
        return filter(None, rocksdb_values(self._store, db))  # C all the way: no frame each

    def persisted(self, changelog: str, partition: int, offset: int) -> None:
        self._store.set_persisted_offset(TP(changelog, partition), offset)


def local_store(table: Any) -> LocalStore:
    store = table.data
    in_memory = isinstance(store, MemoryStore) or isinstance(getattr(store, "data", None), dict)
    return InMemory(store) if in_memory else RocksDB(store)
