"""Sharded replay: every process routes a block of the lines; a failure there is an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.replay_bench import decisions_sha256, long_history_lines
from core.config import Config
from kairos.replay import run_replay, shards


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.jsonl"
    path.write_bytes(b"\n".join(long_history_lines(12_000, seed=3)) + b"\n")
    return path


@pytest.mark.subprocess  # forks replay's shards
@pytest.mark.parametrize("jobs", [2, 3])
def test_routed_in_blocks_the_shards_give_the_one_process_decisions(
    long_file: Path, jobs: int
) -> None:
    (one,) = run_replay([long_file], [Config()], jobs=1, keep_decisions=True)
    (many,) = run_replay([long_file], [Config()], jobs=jobs, keep_decisions=True)
    assert many.events == one.events == 12_000 and many.misrouted == 0
    assert many.fired == one.fired and many.stages == one.stages
    assert many.per_customer == one.per_customer and many.pending == one.pending
    assert sorted(d.to_record()["action_id"] for d in many.decisions or ()) == sorted(
        d.to_record()["action_id"] for d in one.decisions or ()
    )
    again = run_replay([long_file], [Config()], jobs=jobs, keep_decisions=True)[0]
    assert decisions_sha256(again) == decisions_sha256(many)


@pytest.mark.subprocess  # forks replay's shards
def test_a_shard_that_fails_while_routing_ends_the_replay_with_an_error(
    long_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, real = os.getpid(), shards._route

    def failing_in_a_child(lines: list[bytes], jobs: int) -> list[int]:
        if os.getpid() != parent:
            raise ValueError("boom while routing")
        return real(lines, jobs)

    monkeypatch.setattr(shards, "_route", failing_in_a_child)
    with pytest.raises(RuntimeError, match="boom while routing"):
        run_replay([long_file], [Config()], jobs=2)
