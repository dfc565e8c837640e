"""``kairos replay --json`` and ``kairos report`` give the same experiment figures, and the
simulated traffic's built-in effect per variant is found within its interval."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.config_file import load_config
from core.driver import Driver, Outputs
from kairos.experiment_sim import experiment_events
from kairos.replay import load, replay, summary
from kairos.report import format_table, rows, tally
from stream.events import decode_line

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
triggers:
  abandoned_cart:
    holdout: 0.3
    variants:
      short: {}
      late:
        delay: 2h
        channel: email
        template: "Still thinking it over? {item_count} item(s) in your cart"
costs:
  push: 0.01
  email: 0.002
"""
LIFT = {"short": 0.04, "late": 0.12}
BASE = 0.05


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("experiment")
    config = tmp / "triggers.yaml"
    config.write_text(CONFIG)
    events = experiment_events(load_config(config), 8000, LIFT, base=BASE)
    path = tmp / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return config, path


def replay_json(config: Path, events: Path, jobs: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kairos.cli",
            "replay",
            "--json",
            "--config",
            str(config),
            "--jobs",
            str(jobs),
            str(events),
        ],
        capture_output=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    return orjson.loads(done.stdout)


def records(config: Path, events: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a live worker would publish on ``actions`` and ``conversions`` for these events."""
    out = Outputs()
    driver = Driver(load_config(config), out)
    last = 0
    for line in events.read_bytes().splitlines():
        ev = decode_line(line)
        driver.send(ev)  # type: ignore[arg-type]
        last = ev.ts  # type: ignore[union-attr]
    driver.advance(last)
    return [d.to_record() for d in out.decisions], [c.to_record() for c in out.conversions]


def test_report_and_replay_show_the_same_figures(experiment: tuple[Path, Path]) -> None:
    config, events = experiment
    cfg = load_config(config)
    actions, conversions = records(config, events)
    report = rows(tally(actions + actions[:50], conversions), cfg)  # repeats counted once
    effect = summary(replay(load([events]), cfg), cfg)["effect"]
    assert set(effect) == set(report) == {"abandoned_cart", "welcome"}
    for trigger, replayed in effect.items():
        assert {k: report[trigger][k] for k in replayed} == replayed, trigger
    replayed = effect["abandoned_cart"]
    variants = replayed["variants"]
    assert list(variants) == ["short", "late"]  # the config's order: the first is the baseline
    for name, v in variants.items():
        for key in ("decisions", "sent", "conversions", "revenue", "uplift", "interval"):
            assert v[key] is not None, (name, key)
    # The text of the report carries the experiment lines.
    text = format_table(report)
    assert "variant late:" in text and "vs short:" in text


@pytest.mark.subprocess  # runs `kairos replay`
def test_replay_json_on_one_or_two_processes_is_the_same(experiment: tuple[Path, Path]) -> None:
    config, events = experiment
    cfg = load_config(config)
    expected = summary(replay(load([events]), cfg), cfg)["effect"]
    for jobs in (1, 2):
        assert replay_json(config, events, jobs)["effect"] == expected


def test_the_built_in_effect_per_variant_is_recovered(experiment: tuple[Path, Path]) -> None:
    config, events = experiment
    cfg = load_config(config)
    result = replay(load([events]), cfg)
    figures = summary(result, cfg)["effect"]["abandoned_cart"]
    variants = figures["variants"]
    for name, lift in LIFT.items():
        v = variants[name]
        low, high = v["interval"]
        assert low <= lift <= high, (name, lift, v["uplift"], v["interval"])
        assert v["messages"] == {("push" if name == "short" else "email"): v["sent"]}
    late = variants["late"]
    low, high = late["versus_first"]["interval"]
    assert low <= LIFT["late"] - LIFT["short"] <= high
    assert late["versus_first"]["verdict"] == "late beats short with 95% confidence"
    # Money: messages at the configured cost, and every figure consistent with the counts.
    assert late["message_cost"] == pytest.approx(late["sent"] * 0.002, abs=1e-4)
    assert figures["cost"] == pytest.approx(variants["short"]["cost"] + late["cost"], abs=1e-3)
    incremental = (
        late["revenue_sent"] / late["sent"] - late["revenue_held_out"] / late["held_out"]
    ) * late["sent"]
    assert late["incremental_revenue"] == pytest.approx(incremental, abs=0.01)
    assert late["roi"] == pytest.approx((incremental - late["cost"]) / late["cost"], rel=1e-3)
