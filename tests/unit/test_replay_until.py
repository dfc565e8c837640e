"""``kairos replay``: deadlines still pending at the end, and ``--until`` to run past them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from core.config import Config
from kairos import replay
from kairos.simulate import generate

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z
MIN = 60_000
ROOT = Path(__file__).resolve().parents[2]


def line(etype: str, ts: int, cid: str, eid: str, **fields: object) -> bytes:
    return orjson.dumps({"event_id": eid, "type": etype, "customer_id": cid, "ts": ts, **fields})


@pytest.fixture
def cart_file(tmp_path: Path) -> Path:
    """A file that ends right after a cart add: its 30m deadline is still ahead."""
    path = tmp_path / "cart.jsonl"
    profile = b'{"topic": "profiles", "customer_id": "c1", "value": {"timezone": "UTC"}}'
    lines = [
        profile,
        line("page_view", T0, "c1", "e1", url="/"),
        line("add_to_cart", T0 + MIN, "c1", "e2", product_id="p1", price=20.0),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def kairos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kairos.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.subprocess  # runs `kairos replay`
def test_pending_deadlines_are_reported_per_timer(cart_file: Path) -> None:
    proc = kairos("replay", str(cart_file), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "0 timers fired" in proc.stdout
    assert "clock ended at 2026-01-01T09:01:00Z; deadlines still pending:" in proc.stdout
    assert "abandoned_cart                   1  first due 2026-01-01T09:31:00Z" in proc.stdout
    assert "--until +30m" in proc.stdout


@pytest.mark.subprocess  # runs `kairos replay`
def test_until_a_duration_runs_the_clock_past_the_last_event(cart_file: Path) -> None:
    proc = kairos("replay", str(cart_file), "--jobs", "1", "--json", "--until", "+30m")
    assert proc.returncode == 0, proc.stderr
    report = orjson.loads(proc.stdout)
    assert report["fired"]["abandoned_cart"] == 1
    assert report["last_event"] == T0 + MIN
    assert report["clock"] == T0 + 31 * MIN
    assert "abandoned_cart" not in report["pending"]


@pytest.mark.parametrize(
    "until", ["2026-01-01T09:31:00Z", "2026-01-01T10:31:00+01:00", str(T0 + 31 * MIN)]
)
def test_until_a_time_runs_the_clock_to_that_time(cart_file: Path, until: str) -> None:
    (result,) = replay.run_replay([cart_file], [Config()], until=replay.parse_until(until))
    assert result.clock == T0 + 31 * MIN
    assert result.fired["abandoned_cart"]["send"] == 1


def test_until_one_minute_short_leaves_the_deadline_pending(cart_file: Path) -> None:
    (result,) = replay.run_replay([cart_file], [Config()], until=replay.parse_until("+29m"))
    assert "abandoned_cart" not in result.fired
    assert result.pending["abandoned_cart"] == [1, T0 + 31 * MIN]


@pytest.mark.subprocess  # runs `kairos replay`
def test_until_before_the_last_event_is_refused(cart_file: Path) -> None:
    proc = kairos("replay", str(cart_file), "--until", "2025-12-31T00:00:00Z")
    assert proc.returncode == 2
    assert "is before the last event (2026-01-01T09:01:00Z)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.subprocess  # runs `kairos replay`
@pytest.mark.parametrize("until", ["soon", "+-5m", "+5 parsecs", "2026-01-01T09:00:00"])
def test_until_that_is_not_a_time_is_refused_in_one_line(cart_file: Path, until: str) -> None:
    proc = kairos("replay", str(cart_file), "--until", until)
    assert proc.returncode == 2
    assert "--until" in proc.stderr and "Traceback" not in proc.stderr
    assert "--until" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.subprocess  # forks replay's shards
def test_sharded_replay_with_until_equals_one_process(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    with open(path, "wb") as out:
        for topic, key, value in generate(200, 12_000, 5, T0, 3 * 86_400_000):
            record = {"topic": topic, "customer_id": key, "value": value}
            out.write(orjson.dumps(record if topic == "profiles" else value) + b"\n")
    until = replay.parse_until("+2d")
    (one,) = replay.run_replay([path], [Config()], jobs=1, until=until)
    (two,) = replay.run_replay([path], [Config()], jobs=2, until=until)
    same = {"seconds": 0, "events_per_s": 0}
    assert replay.summary(one) | same == replay.summary(two) | same
    assert one.pending and one.clock == one.last_event + 2 * 86_400_000
