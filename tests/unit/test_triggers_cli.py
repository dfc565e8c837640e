"""``kairos triggers`` without Redis: every mistake in a file is named like in the file,
and a Redis that does not answer changes nothing. (With a real Redis:
``tests/integration/test_triggers_cli_live.py``.)"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kairos.cli import main as kairos
from kairos.launcher import free_port

GOOD = """\
triggers:
  abandoned_cart:
    delay: 30m
"""


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "triggers.yaml"
    path.write_text(GOOD)
    return path


def run(*args: str) -> int:
    return kairos(["triggers", *args])


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    assert run("validate", str(path)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].endswith("problem(s)")
    return [line.replace(f"{path}:", "FILE:") for line in err[:-1]]


def change(url: str, cfg_file: Path, action: str, *args: str) -> int:
    return run(action, "--redis", url, "--config", str(cfg_file), "--by", "alice", *args)


# --- validate ---------------------------------------------------------------------------------


def test_validate_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "triggers.yaml"
    assert run("validate", str(shipped)) == 0
    assert capsys.readouterr().out.strip() == f"{shipped}: valid (14 triggers, 11 on)"


def test_validate_defaults_to_kairos_config(
    cfg_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAIROS_CONFIG", str(cfg_file))
    assert run("validate") == 0
    assert str(cfg_file) in capsys.readouterr().out


def test_validate_reports_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("validate", str(tmp_path / "nope.yaml")) == 1
    assert "nope.yaml: no such config file" in capsys.readouterr().err


def test_validate_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, capsys, "triggers:\n  abandoned_cart:\n    delai: 30m\n") == [
        "FILE:3: triggers.abandoned_cart.delai: unknown setting; did you mean 'delay'?"
    ]


def test_validate_unknown_trigger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, capsys, "triggers:\n  abandoned_kart: {}\n") == [
        "FILE:2: triggers.abandoned_kart: unknown trigger; did you mean 'abandoned_cart'?"
    ]


def test_validate_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "triggers:\n  abandoned_cart:\n    enabled: maybe\n    min_cart_value: lots\n"
    assert validate(tmp_path, capsys, text) == [
        "FILE:3: triggers.abandoned_cart.enabled: expected true or false, got 'maybe'",
        "FILE:4: triggers.abandoned_cart.min_cart_value: expected a number, got 'lots'",
    ]


def test_validate_negative_delay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, capsys, "triggers:\n  abandoned_cart:\n    delay: -5m\n") == [
        "FILE:3: triggers.abandoned_cart.delay: a duration cannot be negative, got '-5m'"
    ]


def test_validate_unknown_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, capsys, "triggers:\n  abandoned_cart:\n    channel: pusj\n") == [
        "FILE:3: triggers.abandoned_cart.channel: expected a channel (console, push, email, "
        "sms, webhook, slack, wecom), got 'pusj'; did you mean 'push'?"
    ]


def test_validate_unknown_template_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = 'triggers:\n  abandoned_cart:\n    template: "{item_cnt} left"\n'
    (problem,) = validate(tmp_path, capsys, text)
    assert problem.startswith(
        "FILE:3: triggers.abandoned_cart.template: expected template variables of abandoned_cart"
    )
    assert problem.endswith("got {item_cnt} (did you mean {item_count}?)")


def test_validate_yaml_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (problem,) = validate(tmp_path, capsys, "triggers:\n  abandoned_cart: [\n")
    assert problem.startswith("FILE:3: (syntax): invalid YAML")


def test_validate_prints_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """\
        policy:
          quiet_hours:
            start: 25:00
        triggers:
          abandoned_cart:
            delay: 30
            holdout: 1.5
    """
    found = validate(tmp_path, capsys, text)
    assert [p.split(": ")[1] for p in found] == [
        "policy.quiet_hours.start",
        "triggers.abandoned_cart.delay",
        "triggers.abandoned_cart.holdout",
    ]


# --- without Redis: nothing changes, list falls back to the file -----------------------------


def test_unreachable_redis_changes_nothing(
    cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert change(dead, cfg_file, "disable", "abandoned_cart") == 1
    assert "cannot reach Redis" in capsys.readouterr().err


def test_list_works_from_the_file_when_redis_is_down(
    cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert run("list", "abandoned_cart", "--redis", dead, "--config", str(cfg_file)) == 0
    captured = capsys.readouterr()
    assert "live overrides unknown" in captured.err
    assert "  delay: 30m" in captured.out


def test_help_documents_what_switching_off_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("disable", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "pending timers are dropped when they come due while it is off" in out
    assert "does not fire on history" in out
