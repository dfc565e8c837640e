"""``kairos replay --customers-out`` and the audience sizes replay prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from core.config_file import parse_config
from kairos import replay
from kairos.replay import shards

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
audiences:
  vip: "revenue >= 500"
  germans: "country == 'DE'"
tags:
  buyer: "order_count >= 1"
scores:
  lead:
    points: [{on: page_view, url: /pricing, points: 30}]
    mql: 50
triggers:
  lead_qualified: {owners: [ann]}
"""


def line(etype: str, ts: int, cid: str, eid: str, **fields: object) -> bytes:
    return orjson.dumps({"event_id": eid, "type": etype, "customer_id": cid, "ts": ts, **fields})


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    lines = [
        b'{"topic": "profiles", "customer_id": "a", "value": {"attributes": {"country": "DE"}}}',
        line("order_placed", T0, "a", "a1", order_id="a-1", total=300.0),
        line("order_placed", T0 + DAY, "a", "a2", order_id="a-2", total=300.0),
        line("page_view", T0, "b", "b1", url="/pricing"),
        line("page_view", T0 + 1, "b", "b2", url="/pricing"),
        line("page_view", T0 + 2 * DAY, "c", "c1", url="/"),
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    config = tmp_path / "segments.yaml"
    config.write_text(CONFIG)
    return events, config


@pytest.mark.subprocess  # runs `kairos replay`
def test_customers_out_writes_each_customers_stage_audiences_tags_and_scores(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    events, config = files
    out = tmp_path / "customers.jsonl"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "kairos.cli", "replay", str(events)),
            *("--config", str(config), "--customers-out", str(out)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    customers = {c["customer_id"]: c for c in map(orjson.loads, out.read_bytes().splitlines())}
    assert list(customers) == ["a", "b", "c"]
    a, b, c = customers["a"], customers["b"], customers["c"]
    assert (a["stage"], a["audiences"], a["tags"]) == ("loyalty", ["vip", "germans"], ["buyer"])
    # clock at the last event, T0+2d: R5 (1 day), F2 (2 orders), M4 (600) -> fm 3: loyal
    assert a["scores"]["rfm"] == {"r": 5, "f": 2, "m": 4, "segment": "loyal"}
    # 600 / 2 orders = 300 a order; 2 orders over the 30-day minimum tenure: 24.33 a year; x 3y
    assert a["scores"]["clv"] == pytest.approx(300 * 2 / (30 / 365) * 3, abs=0.01)
    assert a["scores"]["lead"] == 0.0
    assert b["audiences"] == [] and b["tags"] == []
    assert b["scores"]["rfm"]["segment"] == "prospect"
    # two pricing views (30 each) at T0, faded over 2 days at the default 14-day half-life
    assert b["scores"]["lead"] == round(60 * 0.5 ** ((2 * DAY - 1) / (14 * DAY)), 2)
    assert b["scores"]["qualified"] is True
    assert c["scores"]["lead"] == 0.0
    text = proc.stdout
    assert "customers per audience at the end:\n  vip" in text
    assert "germans                          1" in text
    assert "customers per RFM segment at the end:\n  prospect 2, loyal 1" in text
    assert "MQLs by owner (lead_qualified):\n  ann 1" in text


@pytest.mark.subprocess  # forks replay's shards
def test_sharded_replay_gives_the_same_customers(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    events, _ = files
    cfg = parse_config(CONFIG, "segments.yaml")
    monkeypatch.setattr(shards, "MIN_LINES_TO_SHARD", 1)
    (one,) = replay.run_replay([events], [cfg], jobs=1, keep_customers=True)
    (two,) = replay.run_replay([events], [cfg], jobs=2, keep_customers=True)

    def by_id(result: replay.Result) -> list[dict[str, object]]:
        return sorted(result.population.customers or (), key=lambda c: str(c["customer_id"]))

    assert by_id(one) == by_id(two)
    assert len(by_id(one)) == 3
    assert one.population.audiences == two.population.audiences == {"vip": 1, "germans": 1}
    summary = replay.summary(two)
    assert summary["audiences"] == {"vip": 1, "germans": 1}
    assert summary["mqls_by_owner"] == {"ann": 1}


def test_a_replay_without_audiences_computes_no_population(files: tuple[Path, Path]) -> None:
    events, _ = files
    (result,) = replay.run_replay([events], [parse_config("{}", "x")], jobs=1)
    assert not result.population.audiences and result.population.customers is None
    assert "audiences" not in replay.summary(result)
