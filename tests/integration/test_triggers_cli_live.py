"""``kairos triggers`` against a real Redis: overrides, announcements, history, list and reset.

A mistake changes nothing in Redis. (The checks that need no Redis:
``tests/unit/test_triggers_cli.py``.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from kairos.cli import main as kairos
from state.override_store import read_history, read_overrides
from state.overrides import CHANNEL

pytestmark = pytest.mark.integration

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


def change(url: str, cfg_file: Path, action: str, *args: str) -> int:
    return run(action, "--redis", url, "--config", str(cfg_file), "--by", "alice", *args)


def state(url: str) -> tuple[dict[str, str], list[dict]]:
    client = redis.Redis.from_url(url)
    return read_overrides(client), read_history(client, 100)


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
    pubsub.subscribe(CHANNEL)
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
    assert "# 14 triggers: 9 on, 1 in shadow mode, 4 off" in out
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
