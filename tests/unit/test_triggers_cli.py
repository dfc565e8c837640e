"""``kairos triggers``: every mistake is named like in the file, and nothing changes on one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import redis

from kairos.cli import main as kairos
from kairos.launcher import free_port
from state import live_config as live

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


@pytest.fixture
def url(redis_url: str) -> str:
    """An empty Redis database of its own."""
    own = redis_url.rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(own).flushdb()
    return own


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


def state(url: str) -> tuple[dict[str, str], list[dict]]:
    client = redis.Redis.from_url(url)
    return live.read_overrides(client), live.read_history(client, 100)


# --- validate ---------------------------------------------------------------------------------


def test_validate_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "triggers.yaml"
    assert run("validate", str(shipped)) == 0
    assert capsys.readouterr().out.strip() == f"{shipped}: valid (8 triggers, 8 on)"


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


# --- set / enable / disable: validated like the file, nothing changed on error ---------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("abandoned_cart", "delay", "--", "-5m"),  # `--`: not an option
            "triggers.abandoned_cart.delay: a duration cannot be negative, got '-5m'",
        ),
        (
            ("abandoned_cart", "delay", "45"),
            "triggers.abandoned_cart.delay: expected a duration with a unit like 30s, 30m or 30d,"
            " got 45",
        ),
        (
            ("abandoned_cart", "shadow", "sometimes"),
            "triggers.abandoned_cart.shadow: expected true or false, got 'sometimes'",
        ),
        (
            ("abandoned_cart", "channel", "pigeon"),
            "triggers.abandoned_cart.channel: expected a channel (console, push, email, sms, "
            "webhook, slack, wecom), got 'pigeon'",
        ),
        (
            ("abandoned_cart", "delai", "45m"),
            "triggers.abandoned_cart.delai: unknown setting; did you mean 'delay'?",
        ),
        (
            ("abandoned_kart", "delay", "45m"),
            "triggers.abandoned_kart: unknown trigger; did you mean 'abandoned_cart'?",
        ),
        (
            ("abandoned_cart", "template", '"{nope} left"'),
            "triggers.abandoned_cart.template: expected template variables of abandoned_cart",
        ),
        (
            ("abandoned_cart", "template", "{item_count} left"),
            "triggers.abandoned_cart.template: invalid YAML",
        ),
        (
            ("policy", "quiet_hours.start", "25:00"),
            "policy.quiet_hours.start: expected a time of day as HH:MM like 21:00, got '25:00'",
        ),
        (
            ("abandoned_cart", "delay", "30m\nchannel: sms"),
            "triggers.abandoned_cart.delay: expected a value on one line",
        ),
    ],
)
def test_invalid_set_is_explained_and_changes_nothing(
    url: str,
    cfg_file: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    assert change(url, cfg_file, "set", *args) == 1
    err = capsys.readouterr().err
    assert f"kairos triggers: live override: {message}" in err
    assert "nothing changed" in err
    assert state(url) == ({}, [])


def test_set_stores_the_value_as_typed_and_records_who_and_what(
    url: str, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert change(url, cfg_file, "set", "abandoned_cart", "delay", "45m") == 0
    assert "triggers.abandoned_cart.delay: 30m -> 45m" in capsys.readouterr().out
    overrides, history = state(url)
    assert overrides == {"triggers.abandoned_cart.delay": "45m"}
    (entry,) = history
    assert entry["at"] > 0
    assert {k: entry[k] for k in ("key", "old", "new", "by", "source")} == {
        "key": "triggers.abandoned_cart.delay",
        "old": "30m",
        "new": "45m",
        "by": "alice",
        "source": "cli",
    }


def test_set_announces_the_change_on_the_config_channel(url: str, cfg_file: Path) -> None:
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.CHANNEL)
    pubsub.get_message(timeout=1)  # the subscription confirmation
    assert change(url, cfg_file, "disable", "abandoned_cart") == 0
    message = pubsub.get_message(timeout=2)
    assert message is not None
    assert json.loads(message["data"]) == ["triggers.abandoned_cart.enabled"]


def test_setting_the_same_value_again_records_nothing(url: str, cfg_file: Path) -> None:
    assert change(url, cfg_file, "disable", "abandoned_cart") == 0
    assert change(url, cfg_file, "disable", "abandoned_cart") == 0
    assert len(state(url)[1]) == 1


def test_enable_disable_and_shadow_are_overrides(url: str, cfg_file: Path) -> None:
    assert change(url, cfg_file, "disable", "welcome") == 0
    assert change(url, cfg_file, "enable", "welcome") == 0
    assert change(url, cfg_file, "set", "abandoned_cart", "shadow", "true") == 0
    overrides, history = state(url)
    assert overrides == {
        "triggers.welcome.enabled": "true",
        "triggers.abandoned_cart.shadow": "true",
    }
    assert [(h["key"], h["old"], h["new"]) for h in history] == [  # newest first
        ("triggers.abandoned_cart.shadow", "false", "true"),
        ("triggers.welcome.enabled", "false", "true"),
        ("triggers.welcome.enabled", "true", "false"),
    ]


def test_by_defaults_to_user(url: str, cfg_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "bob")
    assert run("disable", "welcome", "--redis", url, "--config", str(cfg_file)) == 0
    assert state(url)[1][0]["by"] == "bob"


def test_global_policy_can_be_set_too(url: str, cfg_file: Path) -> None:
    assert change(url, cfg_file, "set", "policy", "quiet_hours.enabled", "false") == 0
    assert state(url)[0] == {"policy.quiet_hours.enabled": "false"}


def test_unreachable_redis_changes_nothing(
    cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert change(dead, cfg_file, "disable", "abandoned_cart") == 1
    assert "cannot reach Redis" in capsys.readouterr().err


# --- list, reset, history ---------------------------------------------------------------------


def test_list_shows_the_effective_config_and_what_is_live(
    url: str, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change(url, cfg_file, "disable", "abandoned_cart")
    change(url, cfg_file, "set", "abandoned_cart", "delay", "45m")
    change(url, cfg_file, "set", "welcome", "shadow", "true")
    capsys.readouterr()
    assert change(url, cfg_file, "list") == 0
    out = capsys.readouterr().out
    assert "# 8 triggers: 6 on, 1 in shadow mode, 1 off" in out
    assert "triggers.abandoned_cart:  # off" in out
    assert "triggers.welcome:  # shadow (decides, never sends)" in out
    assert "triggers.browse_abandonment:  # on" in out
    assert "  enabled: false  # live override (file: true)" in out
    assert "  delay: 45m  # live override (file: 30m)" in out


def test_list_json_says_which_triggers_are_on(
    url: str, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change(url, cfg_file, "disable", "abandoned_cart")
    capsys.readouterr()
    assert change(url, cfg_file, "list", "abandoned_cart", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["triggers"]["abandoned_cart"] == {"on": False, "shadow": False}
    assert out["triggers"]["welcome"] == {"on": True, "shadow": False}
    assert out["settings"]["triggers.abandoned_cart.delay"] == "30m"
    assert out["overrides"] == {"triggers.abandoned_cart.enabled": "false"}


def test_list_works_from_the_file_when_redis_is_down(
    cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert run("list", "abandoned_cart", "--redis", dead, "--config", str(cfg_file)) == 0
    captured = capsys.readouterr()
    assert "live overrides unknown" in captured.err
    assert "  delay: 30m" in captured.out


def test_reset_hands_the_setting_back_to_the_file(url: str, cfg_file: Path) -> None:
    change(url, cfg_file, "set", "abandoned_cart", "delay", "45m")
    change(url, cfg_file, "disable", "abandoned_cart")
    assert change(url, cfg_file, "reset", "abandoned_cart", "delay") == 0
    assert state(url)[0] == {"triggers.abandoned_cart.enabled": "false"}
    assert change(url, cfg_file, "reset", "abandoned_cart") == 0
    overrides, history = state(url)
    assert overrides == {}
    assert [(h["key"], h["old"], h["new"], h["source"]) for h in history[:2]] == [
        ("triggers.abandoned_cart.enabled", "false", "true", "cli reset"),
        ("triggers.abandoned_cart.delay", "45m", "30m", "cli reset"),
    ]


def test_history_lists_newest_first_and_filters_by_trigger(
    url: str, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change(url, cfg_file, "disable", "welcome")
    change(url, cfg_file, "set", "abandoned_cart", "delay", "45m")
    capsys.readouterr()
    assert change(url, cfg_file, "history") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("alice        cli       triggers.abandoned_cart.delay: 30m -> 45m")
    assert lines[1].endswith("triggers.welcome.enabled: true -> false")
    assert change(url, cfg_file, "history", "welcome", "--json") == 0
    (only,) = capsys.readouterr().out.splitlines()
    assert json.loads(only)["key"] == "triggers.welcome.enabled"


def test_help_documents_what_switching_off_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("disable", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "pending timers are dropped when they come due while it is off" in out
    assert "does not fire on history" in out
