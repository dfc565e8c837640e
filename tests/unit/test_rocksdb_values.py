"""A restart reads a RocksDB partition's customers around Faust's offset record."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

rocksdict = pytest.importorskip("rocksdict")
from faust.stores.rocksdb import Store  # noqa: E402

from stream.app import rocksdb_values  # noqa: E402


def test_every_value_but_the_offset_record_in_key_order(tmp_path: Path) -> None:
    db = rocksdict.Rdict(str(tmp_path / "p0"), options=rocksdict.Options(raw_mode=True))
    offset = Store.offset_key
    # keys on both sides of the offset record, and the ones next to it in byte order
    keys = [b"A-1", b"__faust", offset[:-1], offset + b"\0", offset + b"x", b"zz"]
    for key in keys:
        db[key] = b"value of " + key
    db[offset] = b"1234"  # what Store.set_persisted_offset writes

    values = rocksdb_values(Store, db)
    gc.collect()  # the iterators outlive the read options made for them
    assert list(values) == [b"value of " + key for key in sorted(keys)]
    db.close()
