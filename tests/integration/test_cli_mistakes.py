"""Every ``kairos`` command, given a user's mistake: one readable line, non-zero, no traceback.

Each case runs the real command line in a child process, from a scratch folder, with
the bad input of one kind: an unreachable or malformed broker or Redis address, a
missing file, a folder, binary garbage, UTF-16, YAML nested thousands deep, an invalid
config, an output folder that does not exist, a zero, negative or absurd number or
duration, an unknown name. Nothing listens on the "closed" loopback port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kairos.cli import COMMANDS
from kairos.launcher import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLOSED = free_port()  # nothing listens here
DEAD_BROKER = {"BROKER_URL": f"kafka://127.0.0.1:{CLOSED}"}
DEAD_REDIS = {"REDIS_URL": f"redis://127.0.0.1:{CLOSED}/0"}
GOOD_CONFIG = str(ROOT / "config" / "triggers.yaml")


@dataclass(frozen=True)
class Case:
    argv: list[str]
    words: str  # in the last line of stderr
    env: dict[str, str] = field(default_factory=dict)
    lines: int = 1  # stderr lines allowed (the first problems of a file, then the verdict)
    prefix: str = "kairos"  # how the last line starts: the command's name


BAD_CONFIGS = {
    "binary": ("bin.yaml", "is not a text file"),
    "utf16": ("u16.yaml", "is UTF-16 text; save it as UTF-8"),
    "deep": ("deep.yaml", "nested too deeply"),
    "folder": ("folder", "is a folder"),
    "missing": ("missing.yaml", "no such"),
}

CASES: dict[str, Case] = {
    # report
    "report unreachable broker": Case(["report"], "cannot reach the Kafka broker", DEAD_BROKER),
    "report BROKER_URL=notaurl": Case(
        ["report"], "BROKER_URL 'notaurl' is not a broker address", {"BROKER_URL": "notaurl"}
    ),
    "report --bootstrap garbage": Case(
        ["report", "--bootstrap", "no port"], "--bootstrap 'no port' is not a broker address"
    ),
    "report --timeout -1": Case(["report", "--timeout", "-1"], "-1 is negative"),
    # publish
    "publish unreachable broker": Case(
        ["publish", "one.jsonl"], "cannot reach the Kafka broker", DEAD_BROKER
    ),
    "publish BROKER_URL=notaurl": Case(
        ["publish", "one.jsonl"], "is not a broker address", {"BROKER_URL": "notaurl"}
    ),
    "publish missing file": Case(["publish", "nope.jsonl"], "nope.jsonl: no such"),
    "publish a folder": Case(["publish", "folder"], "folder: is a folder"),
    "publish binary garbage": Case(["publish", "bin.yaml"], "no valid record in bin.yaml", lines=3),
    "publish no valid line": Case(
        ["publish", "bad.jsonl"], "no valid record in bad.jsonl: 2 invalid line(s)", lines=4
    ),
    # replay
    "replay missing file": Case(["replay", "nope.jsonl"], "nope.jsonl: no such"),
    "replay a folder": Case(["replay", "folder"], "folder: is a folder"),
    "replay no valid line": Case(
        ["replay", "bad.jsonl"], "no valid event in bad.jsonl: 2 invalid line(s)", lines=4
    ),
    "replay empty file": Case(["replay", "empty.jsonl"], "no events in empty.jsonl"),
    "replay --decisions-out missing folder": Case(
        ["replay", "one.jsonl", "--decisions-out", "nowhere/d.jsonl"],
        "folder nowhere does not exist",
    ),
    "replay --jobs 0": Case(["replay", "one.jsonl", "--jobs", "0"], "--jobs: 0 is too small"),
    "replay --jobs -1": Case(["replay", "one.jsonl", "--jobs", "-1"], "--jobs: -1 is negative"),
    "replay --until soon": Case(["replay", "one.jsonl", "--until", "soon"], "--until"),
    "replay --until before the end": Case(
        ["replay", "one.jsonl", "--until", "2000-01-01T00:00:00Z"], "is before the last event"
    ),
    "replay invalid config": Case(
        ["replay", "one.jsonl", "--config", "invalid.yaml"], "1 problem(s)", lines=2
    ),
    # simulate
    "simulate --out missing folder": Case(
        ["simulate", "--out", "nowhere/e.jsonl", "--events", "5"], "folder nowhere does not exist"
    ),
    "simulate --out a folder": Case(["simulate", "--out", "folder"], "is a folder"),
    "simulate --customers 0": Case(
        ["simulate", "--out", "e.jsonl", "--customers", "0"], "--customers: 0 is too small"
    ),
    "simulate --span soon": Case(
        ["simulate", "--out", "e.jsonl", "--span", "soon"], "expected a duration like 30m"
    ),
    "simulate --span -5m": Case(["simulate", "--out", "e.jsonl", "--span", "-5m"], "negative"),
    "simulate --span 99999d": Case(
        ["simulate", "--out", "e.jsonl", "--span", "99999d"], "too long"
    ),
    "simulate --events -3": Case(["simulate", "--out", "e.jsonl", "--events", "-3"], "negative"),
    "simulate --rate 0": Case(["simulate", "--rate", "0"], "--rate: 0 is too small"),
    "simulate --bad-rate 2": Case(["simulate", "--bad-rate", "2"], "too large"),
    "simulate unreachable broker": Case(
        ["simulate", "--duration", "1"], "cannot reach the Kafka broker", DEAD_BROKER
    ),
    # triggers
    "triggers disable REDIS_URL=garbage": Case(
        ["triggers", "disable", "welcome"],
        "REDIS_URL 'garbage' is not a Redis URL",
        {"REDIS_URL": "garbage"},
    ),
    "triggers disable unreachable redis": Case(
        ["triggers", "disable", "welcome"], "cannot reach Redis", DEAD_REDIS
    ),
    "triggers set negative duration": Case(
        ["triggers", "set", "abandoned_cart", "delay", "-5m"], "cannot be negative, got '-5m'"
    ),
    "triggers set absurd duration": Case(
        ["triggers", "set", "abandoned_cart", "delay", "99999d"], "99999d is too long"
    ),
    "triggers set unknown setting": Case(
        ["triggers", "set", "abandoned_cart", "delai", "5m"], "did you mean 'delay'?"
    ),
    "triggers reset unknown trigger": Case(
        ["triggers", "reset", "no_such_trigger"], "no trigger or section named 'no_such_trigger'"
    ),
    "triggers reset unknown setting": Case(
        ["triggers", "reset", "abandoned_cart", "nokey"], "has no setting 'nokey'"
    ),
    "triggers history --limit 0": Case(["triggers", "history", "--limit", "0"], "too small"),
    "triggers validate invalid": Case(
        ["triggers", "validate", "invalid.yaml"], "1 problem(s)", lines=2, prefix="invalid.yaml:"
    ),
    # worker and dispatcher: config, broker, arguments
    "worker unreachable broker": Case(
        ["worker", "--config", GOOD_CONFIG], "cannot reach the Kafka broker", DEAD_BROKER
    ),
    "dispatcher unreachable broker": Case(
        ["dispatcher", "--config", GOOD_CONFIG], "cannot reach the Kafka broker", DEAD_BROKER
    ),
    "worker --metrics-port 99999": Case(["worker", "--metrics-port", "99999"], "too large"),
    "worker invalid config": Case(["worker", "--config", "invalid.yaml"], "1 problem(s)", lines=2),
    # dev
    "dev --duration -5": Case(["dev", "--duration", "-5"], "--duration: -5 is negative"),
    "dev --rate 0": Case(["dev", "--rate", "0"], "--rate: 0 is too small"),
    "dev --customers 0": Case(["dev", "--customers", "0"], "--customers: 0 is too small"),
    "dev --partitions 0": Case(["dev", "--partitions", "0"], "--partitions: 0 is too small"),
    "dev --summary-json missing folder": Case(
        ["dev", "--config", GOOD_CONFIG, "--summary-json", "nowhere/s.json"],
        "folder nowhere does not exist",
    ),
    # forget
    "forget bad broker": Case(["forget", "c1", "--yes", "--bootstrap", "notaurl"], "notaurl"),
    # console
    "console without users": Case(
        ["console"],
        "no console users",
        {"KAIROS_CONSOLE_USERS": "", "KAIROS_CONSOLE_USERS_FILE": ""},
    ),
}
for kind, (name, words) in BAD_CONFIGS.items():
    CASES[f"triggers validate {kind}"] = Case(["triggers", "validate", name], words)
    CASES[f"triggers list {kind}"] = Case(["triggers", "list", "--config", name], words, DEAD_REDIS)
    CASES[f"replay --config {kind}"] = Case(["replay", "one.jsonl", "--config", name], words)
    CASES[f"replay --compare {kind}"] = Case(["replay", "one.jsonl", "--compare", name], words)
    CASES[f"worker config {kind}"] = Case(["worker"], words, {"KAIROS_CONFIG": name, **DEAD_BROKER})
    CASES[f"dispatcher config {kind}"] = Case(["dispatcher", "--config", name], words, DEAD_BROKER)
    CASES[f"dev --config {kind}"] = Case(["dev", "--config", name], words)
for command in COMMANDS:  # whatever commands there are, and will be
    CASES[f"{command} unknown option"] = Case([command, "--no-such-option"], "--help")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mistakes")
    (d / "bin.yaml").write_bytes(b"\x00\xff\xfe\x01\x89PNG garbage\x00")
    (d / "u16.yaml").write_bytes("journey:\n  at_risk_after: 30d\n".encode("utf-16"))
    (d / "deep.yaml").write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    (d / "folder").mkdir()
    (d / "invalid.yaml").write_text("triggers:\n  abandoned_cart:\n    delay: soon\n")
    (d / "one.jsonl").write_text(
        '{"event_id":"e1","type":"page_view","customer_id":"c1","ts":1767225600000}\n'
    )
    (d / "bad.jsonl").write_text('garbage\n{"type": "nps", "score": 11}\n')
    (d / "empty.jsonl").write_text("")
    return d


def kairos(scratch: Path, case: Case) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BROKER_URL", "REDIS_URL")}
    env.pop("KAIROS_CONFIG", None)
    env.update(DEAD_BROKER | DEAD_REDIS)  # never the developer's own services
    env.update(case.env)
    return subprocess.run(
        [sys.executable, "-m", "kairos.cli", *case.argv],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_a_mistake_gets_one_clear_line_and_a_non_zero_exit(scratch: Path, name: str) -> None:
    case = CASES[name]
    proc = kairos(scratch, case)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    lines = proc.stderr.strip().splitlines()
    assert lines, "nothing said"
    assert case.words in lines[-1], lines
    assert lines[-1].startswith(case.prefix), lines
    assert len(lines) <= case.lines, lines
    assert "\x1b[" not in output, "no terminal escape codes in plain output"


def test_every_command_has_a_mistake_of_its_own() -> None:
    covered = {case.argv[0] for name, case in CASES.items() if "unknown option" not in name}
    assert covered == set(COMMANDS)
