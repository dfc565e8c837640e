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
from kairos.launcher import resolve_broker_bin, resolve_redis_bin, start_broker, start_redis
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


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of this module's own: the live overrides it sets touch no other test."""
    server = start_redis(resolve_redis_bin(), log_dir=tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


async def test_allocate_publishes_thompson_weights_as_live_config(
    own_bootstrap: str, own_redis: str, tmp_path: Path
) -> None:
    """``kairos report --allocate 0.1 --apply``: the better variant gets more, none under 10%,
    set as one live override the workers' effective config (and its decisions) follow."""
    from core.config_file import parse_config
    from state import override_store, overrides

    # The first test published actions in which "late" (+10 points) beats "short" (+3).
    config = tmp_path / "triggers.yaml"
    config.write_text(CONFIG)
    printed = kairos(
        "report",
        "--bootstrap",
        own_bootstrap,
        "--config",
        str(config),
        "--allocate",
        "0.1",
        "--apply",
        "--redis",
        own_redis,
        "--timeout",
        "60",
    ).decode()
    assert printed.startswith("kairos triggers set abandoned_cart variants ")
    import redis

    client = redis.Redis.from_url(own_redis)
    try:
        live = override_store.read_overrides(client)
    finally:
        client.close()
    value = live["triggers.abandoned_cart.variants"]
    cfg, problems = overrides.apply_overrides(load_config(config), live)
    assert not problems
    variants = cfg.triggers["abandoned_cart"].variants
    assert variants["late"].weight > 0.85 and variants["short"].weight >= 0.1
    assert variants["late"].overrides == {"delay": 7_200_000, "channel": "sms"}
    assert parse_config(f"triggers: {{abandoned_cart: {{variants: {value}}}}}", "x") is not None
    # Decisions under the published allocation record the share in force.
    out = Outputs()
    driver = Driver(cfg, out)
    for e in experiment_events(cfg, 400, {}, seed=9):
        if e["type"] == "add_to_cart":
            driver.send(decode_line(orjson.dumps(e)))  # type: ignore[arg-type]
    driver.advance(1_767_258_000_000 + 400 * 7_000 + 3 * 3_600_000)
    shares = {d.variant: d.variant_share for d in out.decisions if d.trigger == "abandoned_cart"}
    total = variants["late"].weight + variants["short"].weight
    assert shares["late"] == pytest.approx(variants["late"].weight / total)
