"""``kairos replay`` and the effect statistics it reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from core.config import Config
from core.config_file import load_config
from core.effect import Effect, uplift
from core.model import Conversion, Decision
from kairos import replay
from kairos.replay import shards

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
ROOT = Path(__file__).resolve().parents[2]


def line(etype: str, ts: int | str, cid: str, eid: str, **fields: object) -> bytes:
    return orjson.dumps({"event_id": eid, "type": etype, "customer_id": cid, "ts": ts, **fields})


def shopper_lines(cid: str, start: int) -> list[bytes]:
    """A cart left behind, a burst of views, a paid order and a detractor answer."""
    return [
        line("page_view", start, cid, f"{cid}-1", url="/"),
        line("add_to_cart", start + MIN, cid, f"{cid}-2", product_id="p1", price=40.0),
        *(
            line("product_view", start + 2 * HOUR + i * MIN, cid, f"{cid}-v{i}", product_id="p2")
            for i in range(3)
        ),
        line("order_placed", start + 3 * HOUR, cid, f"{cid}-o", order_id=f"{cid}-o1", total=40.0),
        line("order_paid", start + 3 * HOUR + MIN, cid, f"{cid}-p", order_id=f"{cid}-o1"),
        line("nps", start + 4 * HOUR, cid, f"{cid}-n", score=2),
    ]


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    lines = [b'{"topic": "profiles", "customer_id": "c0", "value": {"timezone": "UTC"}}']
    for i in range(20):
        lines.extend(shopper_lines(f"c{i}", T0 + i * MIN))
    lines.reverse()  # any order: replay sorts by ts
    lines.insert(3, b"{not json")
    lines.insert(5, b'{"event_id": "x", "type": "teleport", "customer_id": "c1", "ts": 1}')
    lines.append(line("page_view", "2026-01-20T09:00:00+00:00", "late-comer", "iso"))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.subprocess  # runs `kairos replay`
def test_cli_prints_one_json_object_and_writes_action_records(
    events_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "decisions.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kairos.cli",
            "replay",
            str(events_file),
            "--json",
            "--jobs",
            "1",
            "--decisions-out",
            str(out),
        ],
        capture_output=True,
        cwd=ROOT,
        check=True,
    )
    report = orjson.loads(proc.stdout)
    assert report["events"] == 20 * 8 + 1 and report["invalid"] == 2
    assert report["events_per_s"] > 0 and report["seconds"] >= 0
    assert report["fired"] == {
        "abandoned_cart": 20,
        "limited_time_offer": 20,
        "nps_detractor": 20,
        "post_purchase": 20,
        "welcome": 41,
    }
    assert report["stages"]["purchase"] == 20 and report["stages"]["awareness"] == 1
    assert set(report["effect"]["abandoned_cart"]) == {
        "decisions",
        "sent",
        "held_out",
        "conversions_sent",
        "conversions_held_out",
        "revenue_sent",
        "revenue_held_out",
        "uplift",
        "ci95",
        # always valid (core.sequential) and money (core.roi)
        "interval",
        "p_value",
        "verdict",
        "conversions",
        "revenue",
        "messages",
        "message_cost",
        "discount",
        "cost",
        "incremental_revenue",
        "roi",
        "roi_attributed",
        "cost_per_conversion",
    }
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(records) == sum(report["fired"].values())
    assert set(records[0]) == {
        "action_id",
        "trigger",
        "customer_id",
        "channel",
        "decided_at",
        "status",
        "reason",
        "payload",
        "source_event_ids",
    }
    cart = next(r for r in records if r["trigger"] == "abandoned_cart" and r["customer_id"] == "c0")
    assert cart["decided_at"] == T0 + 31 * MIN  # event time, not wall time


def test_human_summary_names_triggers_stages_and_bad_lines(events_file: Path) -> None:
    (result,) = replay.run_replay([events_file], [Config()])
    text = replay.human(result, None)
    assert "abandoned_cart" in text and "customers by stage" in text and "sample:" in text
    assert f"{events_file}:4: malformed JSON" in text
    assert "unknown event type 'teleport'" in text


def test_timers_due_by_the_last_event_fire_and_later_ones_do_not(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                line("add_to_cart", T0, "a", "1", product_id="p"),
                line("add_to_cart", T0 + 10 * MIN, "b", "2", product_id="p"),
                line("page_view", T0 + 30 * MIN, "c", "3"),
            ]
        )
    )
    (result,) = replay.run_replay([path], [Config()])
    assert result.fired["abandoned_cart"]["send"] == 1  # a's cart is due at T0+30m; b's is not


@pytest.mark.subprocess  # forks replay's shards
def test_sharded_replay_equals_one_process(
    events_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards, "MIN_LINES_TO_SHARD", 1)
    (one,) = replay.run_replay([events_file], [Config()], jobs=1, keep_decisions=True)
    (two,) = replay.run_replay([events_file], [Config()], jobs=2, keep_decisions=True)
    assert replay.summary(one) | {"seconds": 0, "events_per_s": 0} == replay.summary(two) | {
        "seconds": 0,
        "events_per_s": 0,
    }
    assert sorted(d.action_id for d in one.decisions or ()) == sorted(
        d.action_id for d in two.decisions or ()
    )
    assert one.errors == two.errors


@pytest.mark.subprocess  # forks replay's shards
def test_sharded_replay_of_two_configs_equals_one_process(
    events_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards, "MIN_LINES_TO_SHARD", 1)
    old = tmp_path / "old.yaml"
    old.write_text("triggers:\n  welcome:\n    enabled: false\n")
    cfgs = [Config(), load_config(old)]
    same = {"seconds": 0, "events_per_s": 0}
    one, two = (
        replay.run_replay([events_file], cfgs, jobs=1),
        replay.run_replay([events_file], cfgs, jobs=2),
    )
    for a, b in zip(one, two, strict=True):
        assert replay.summary(a) | same == replay.summary(b) | same
        assert a.errors == b.errors
    assert replay.compare(two[1], two[0]) == replay.compare(one[1], one[0])


@pytest.mark.subprocess  # forks replay's shards
@pytest.mark.parametrize("how", ["raises", "dies"])
def test_a_shard_that_fails_ends_the_replay_with_an_error_not_a_hang(
    events_file: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(shards, "MIN_LINES_TO_SHARD", 1)
    parent, real = os.getpid(), shards.replay

    def failing_in_a_child(*args: object, **kwargs: object) -> replay.Result:
        if os.getpid() != parent:
            if how == "dies":
                os._exit(3)
            raise ValueError("boom in a shard")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shards, "replay", failing_in_a_child)
    expected = "boom in a shard" if how == "raises" else "ended without sending its result"
    with pytest.raises(RuntimeError, match=expected):
        replay.run_replay([events_file], [Config()], jobs=2)


def test_compare_shows_what_a_config_change_does(events_file: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(
        "triggers:\n  nps_detractor:\n    max_score: 1\n  welcome:\n    enabled: false\n"
    )
    new, before = replay.run_replay([events_file], [Config(), load_config(old)])
    diff = replay.compare(before, new)
    assert diff["nps_detractor"] == {
        "before": 0,
        "after": 20,
        "customers_changed": 20,
        "sample": ["c0", "c1", "c10", "c11", "c12"],
    }
    assert diff["abandoned_cart"]["customers_changed"] == 0
    assert diff["welcome"]["before"] == 0 and diff["welcome"]["after"] == 41


def test_profiles_are_joined_before_events(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    profile = {"consent": {"push": False}}
    path.write_bytes(
        line("add_to_cart", T0, "a", "1", product_id="p")
        + b"\n"
        + orjson.dumps({"topic": "profiles", "customer_id": "a", "value": profile})
        + b"\n"
        + line("page_view", T0 + HOUR, "a", "2")
    )
    (result,) = replay.run_replay([path], [Config()])
    assert dict(result.fired["abandoned_cart"]) == {"suppressed_consent": 1}


def _decision(status: str) -> Decision:
    return Decision("a", "t", "c", "push", 0, status, "", {}, ())


def test_effect_counts_groups_and_conversions() -> None:
    effect = Effect()
    for status in ["send"] * 3 + ["held_out"] * 2 + ["suppressed_consent", "deferred_quiet_hours"]:
        effect.decided(_decision(status))
    effect.converted(Conversion("t", "sent", "a", "c", "o", 10.0, 0))
    effect.converted(Conversion("t", "held_out", "a", "c", "o", 5.0, 0))
    s = effect.summary()
    assert (s["decisions"], s["sent"], s["held_out"]) == (7, 4, 2)
    assert (s["revenue_sent"], s["revenue_held_out"]) == (10.0, 5.0)
    assert s["uplift"] == pytest.approx(0.25 - 0.5)


def test_uplift_is_null_when_a_group_is_empty() -> None:
    assert uplift(10, 3, 0, 0) == (None, None)
    assert uplift(0, 0, 10, 3) == (None, None)


def test_uplift_confidence_interval_by_normal_approximation() -> None:
    diff, ci = uplift(1000, 150, 1000, 100)
    assert diff == pytest.approx(0.05)
    se = (0.15 * 0.85 / 1000 + 0.1 * 0.9 / 1000) ** 0.5
    assert ci == pytest.approx([0.05 - 1.96 * se, 0.05 + 1.96 * se], abs=1e-4)
    assert ci[0] > 0  # a clear effect at this size


@pytest.mark.subprocess  # forks replay's shards
def test_bad_lines_are_reported_by_file_and_line_in_one_process_and_sharded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards, "MIN_LINES_TO_SHARD", 1)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"\n".join([*shopper_lines("c1", T0), b"{broken"]) + b"\n")
    second.write_bytes(
        b"\n".join([b"", *shopper_lines("c2", T0)[:2], b"  ", b"[1, 2]", *shopper_lines("c3", T0)])
    )
    for jobs in (1, 2):
        (result,) = replay.run_replay([first, second], [Config()], jobs=jobs)
        assert result.events == 8 + 2 + 8, jobs
        assert [e.split(": ", 1)[0] for e in result.errors] == [f"{first}:9", f"{second}:5"]
        assert result.errors[1].endswith("expected a JSON object")
