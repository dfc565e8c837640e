"""The drain loop hands records on while a commit (and the checkpoint before it) runs.

Upstream Faust awaits a commit every ``broker_commit_every`` records in the drain loop;
with the checkpoint in front of every commit, the loop stood still for the outputs,
the state writes and their acknowledgements (bench/FINDINGS.md, eighth round).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP, Message

from stream.app import create_app, raw_topics
from stream.settings import Settings

TOPIC = "clickstream"


def message(offset: int) -> Message:
    return Message(TOPIC, 0, offset, 1.0 + offset, 0, {}, b"c1", b"{}", None)


async def test_records_are_handed_on_while_a_commit_is_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAIROS_DATA_DIR", str(tmp_path))
    app = create_app(Settings())
    handled: list[int] = []
    app.kairos_aligned_topics = frozenset({TOPIC})
    app.topics.add(raw_topics(app, TOPIC))  # acked records count towards commit_every
    await app.topics._update_indices()  # type: ignore[attr-defined]  # as when it subscribes
    app.kairos_handler = lambda topic, partition, offset, key, value: handled.append(offset)
    app.kairos_accepting = lambda partition: True
    consumer: Any = app.consumer
    tp = TP(TOPIC, 0)
    consumer.aligner.seek(tp, 0)
    consumer._commit_every = 3

    commits_started = 0
    never = asyncio.Event()

    async def slow_commit(*args: Any, **kwargs: Any) -> bool:  # a checkpoint that hangs
        nonlocal commits_started
        commits_started += 1
        consumer._commit_fut = asyncio.get_running_loop().create_future()
        await never.wait()
        return True

    consumer.commit = slow_commit
    batch = [(tp, message(offset)) for offset in range(10)]
    await asyncio.wait_for(consumer._deliver(batch), timeout=2.0)

    assert handled == list(range(10))
    await asyncio.sleep(0)  # the commit task has started
    assert commits_started == 1  # one under way covers the next ones
    for future in list(consumer._futures):
        future.cancel()
