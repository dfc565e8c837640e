"""``kairos report`` on real topics and ``kairos replay --json`` on the events behind them
agree: the same experiment figures (per variant, always-valid intervals, money), and the
same text lines.

The records are what a worker publishes for the events (``core.driver`` over the
file, as the worker's core); they go through a real broker of this test's own, so no
other test's ``abandoned_cart`` actions mix in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka_helpers import produce

from core.config_file import load_config
from core.driver import Driver, Outputs
from kairos.experiment_sim import experiment_events
from kairos.launcher import resolve_broker_bin, start_broker
from stream.events import decode_line

pytestmark = pytest.mark.integration

KAIROS = str(Path(sys.executable).with_name("kairos"))
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
triggers:
  abandoned_cart:
    holdout: 0.25
    variants:
      short: {}
      late: {delay: 2h, channel: sms}
costs:
  sms: 0.04
"""


@pytest.fixture(scope="module")
def own_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    broker = start_broker(resolve_broker_bin(), log_dir=tmp_path_factory.mktemp("broker"))
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def kairos(*args: str) -> bytes:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [KAIROS, *args], capture_output=True, check=True, timeout=120, env=env, cwd=ROOT
    )
    return done.stdout


async def test_report_on_topics_equals_replay_of_the_events(
    own_bootstrap: str, tmp_path: Path
) -> None:
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG)
    cfg = load_config(config)
    events = experiment_events(cfg, 3000, {"short": 0.03, "late": 0.1}, seed=5)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    out = Outputs()
    driver = Driver(cfg, out)
    for line in path.read_bytes().splitlines():
        driver.send(decode_line(line))  # type: ignore[arg-type]
    driver.advance(events[-1]["ts"])
    actions = [(d.customer_id.encode(), orjson.dumps(d.to_record())) for d in out.decisions]
    conversions = [(c.customer_id.encode(), orjson.dumps(c.to_record())) for c in out.conversions]
    await produce(own_bootstrap, "actions", actions)
    await produce(own_bootstrap, "conversions", conversions)

    report = orjson.loads(
        kairos("report", "--json", "--bootstrap", own_bootstrap, "--config", str(config))
    )
    replayed = orjson.loads(kairos("replay", "--json", "--config", str(config), str(path)))
    assert set(report) == set(replayed["effect"])
    for trigger, figures in replayed["effect"].items():
        assert {k: report[trigger][k] for k in figures} == figures, trigger
    variants = report["abandoned_cart"]["variants"]
    assert list(variants) == ["short", "late"]
    assert variants["late"]["messages"] == {"sms": variants["late"]["sent"]}

    # The text of both commands shows the same experiment lines.
    text = kairos("report", "--bootstrap", own_bootstrap, "--config", str(config)).decode()
    replay_text = kairos("replay", "--config", str(config), str(path)).decode()

    def block(output: str) -> list[str]:
        lines = output.splitlines()
        start = lines.index("experiments (intervals valid however often they are read):")
        return [line for line in lines[start:] if line.startswith("  ")]

    assert block(text) == block(replay_text)
    assert any("vs short:" in line for line in block(text))
