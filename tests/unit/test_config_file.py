"""config/triggers.yaml: merged over the defaults, every mistake reported by file, line and key."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from core.config import Config, QuietHours
from core.config_file import ConfigError, config_to_dict, load_config, parse_config
from core.durations import HOUR, MINUTE
from state.config_watcher import watched_config

SOURCE = "config/triggers.yaml"
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "triggers.yaml"


def parse(text: str) -> Config:
    return parse_config(textwrap.dedent(text), SOURCE)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    found = [str(p) for p in info.value.problems]
    assert str(info.value) == "\n".join(found)
    return found


# --- the shipped file and partial overrides ---------------------------------------------------


def test_shipped_file_loads_to_the_defaults() -> None:
    assert load_config(SHIPPED) == Config()


def test_shipped_file_names_every_setting() -> None:
    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, f"{prefix}{k}.")
        return out

    written = yaml.load(SHIPPED.read_text(), Loader=yaml.BaseLoader)  # keys as written
    assert keys(written) == keys(config_to_dict(Config()))


def test_empty_file_keeps_every_default() -> None:
    assert parse("") == Config()
    assert parse("# only comments\n") == Config()


def test_partial_file_changes_only_what_it_names() -> None:
    cfg = parse(
        """
        triggers:
          abandoned_cart:
            delay: 45m
        """
    )
    default = Config()
    cart = default.triggers["abandoned_cart"]
    assert cfg.triggers["abandoned_cart"] == replace(cart, delay=45 * MINUTE)
    assert {k: v for k, v in cfg.triggers.items() if k != "abandoned_cart"} == {
        k: v for k, v in default.triggers.items() if k != "abandoned_cart"
    }
    assert (cfg.journey, cfg.engine, cfg.policy) == (
        default.journey,
        default.engine,
        default.policy,
    )


def test_trigger_override_keeps_that_triggers_own_defaults() -> None:
    cfg = parse("triggers: {browse_abandonment: {enabled: false}}")
    browse = cfg.triggers["browse_abandonment"]
    assert browse.enabled is False
    assert browse.channel == "email"  # BrowseAbandonmentConfig's default, not TriggerConfig's
    assert browse.delay == 1 * HOUR  # type: ignore[attr-defined]


def test_nested_section_override_keeps_sibling_settings() -> None:
    cfg = parse("policy: {quiet_hours: {start: '22:30'}}")
    assert cfg.policy.quiet_hours == QuietHours(start="22:30")
    assert cfg.policy.frequency_caps == Config().policy.frequency_caps


def test_config_to_dict_round_trips_through_yaml() -> None:
    cfg = parse(
        """
        policy: {cap_exempt_channels: [slack], default_timezone: Europe/Berlin}
        triggers:
          abandoned_cart: {delay: 90m, reminder_delay: 1d, holdout: 0.1}
          post_purchase: {on: order_placed}
        """
    )
    data = config_to_dict(cfg)
    assert data["triggers"]["abandoned_cart"]["delay"] == "90m"
    assert data["triggers"]["abandoned_cart"]["cooldown"] == "0s"
    assert data["policy"]["cap_exempt_channels"] == ["slack"]
    assert parse_config(yaml.safe_dump(data), "dumped.yaml") == cfg


# --- YAML 1.1 surprises -----------------------------------------------------------------------


def test_on_key_is_read_as_written_not_as_boolean() -> None:
    cfg = parse("triggers: {post_purchase: {on: order_placed}}")
    assert cfg.triggers["post_purchase"].on == "order_placed"  # type: ignore[attr-defined]


def test_unquoted_time_of_day_stays_text() -> None:
    cfg = parse("policy: {quiet_hours: {start: 21:30, end: 07:15}}")
    assert cfg.policy.quiet_hours == QuietHours(start="21:30", end="07:15")


def test_merge_keys_share_settings_between_triggers() -> None:
    cfg = parse(
        """
        triggers:
          welcome: &shadowed {shadow: true, channel: sms}
          win_back: {<<: *shadowed, discount_percent: 20}
        """
    )
    win_back = cfg.triggers["win_back"]
    assert (win_back.shadow, win_back.channel) == (True, "sms")
    assert win_back.discount_percent == 20  # type: ignore[attr-defined]


# --- one test per kind of mistake -------------------------------------------------------------


def test_yaml_syntax_error_names_its_line() -> None:
    found = problems(
        """
        triggers:
          abandoned_cart:
            delay: 30m
           channel: push
        """
    )
    assert len(found) == 1
    assert found[0].startswith(f"{SOURCE}:5: (syntax): invalid YAML: ")


def test_top_level_must_be_a_mapping() -> None:
    assert problems("- journey\n- engine\n") == [
        f"{SOURCE}:1: (top level): expected a mapping of sections "
        "(journey, engine, policy, triggers, audiences, tags, scores, costs, membership, "
        "recommend), got a list"
    ]


def test_unknown_key_suggests_the_closest() -> None:
    assert problems(
        """
        triggers:
          abandoned_cart:
            dealy: 45m
        """
    ) == [f"{SOURCE}:4: triggers.abandoned_cart.dealy: unknown setting; did you mean 'delay'?"]


def test_unknown_section_suggests_the_closest() -> None:
    assert problems("polcy: {}\n") == [
        f"{SOURCE}:1: polcy: unknown section; did you mean 'policy'?"
    ]


def test_unknown_key_without_a_close_match_lists_the_valid_ones() -> None:
    (found,) = problems("policy: {frequency_caps: {zzz: 1}}")
    assert found == (
        f"{SOURCE}:1: policy.frequency_caps.zzz: unknown setting; valid: per_day, per_hour_push"
    )


def test_unknown_trigger_name_suggests_the_closest() -> None:
    assert problems("triggers:\n  abandon_cart: {delay: 1h}\n") == [
        f"{SOURCE}:2: triggers.abandon_cart: unknown trigger; did you mean 'abandoned_cart'?"
    ]


def test_boolean_for_a_number_explains_yaml_yes_no() -> None:
    (found,) = problems("journey:\n  loyalty_orders: yes\n")
    assert found.startswith(f"{SOURCE}:2: journey.loyalty_orders: expected a whole number, got yes")
    assert "YAML reads yes/no" in found


def test_wrong_types_are_each_reported() -> None:
    found = problems(
        """
        engine:
          dedupe_size: lots
          recent_views: 2.5
        policy:
          quiet_hours: {enabled: maybe}
          default_timezone: [UTC]
          cap_exempt_channels: slack
        triggers:
          welcome: {channel: no, on_first_activity: 1}
          nps_detractor: {max_score: ''}
          churn_alert: []
        """
    )
    assert found == [
        f"{SOURCE}:3: engine.dedupe_size: expected a whole number, got 'lots'",
        f"{SOURCE}:4: engine.recent_views: expected a whole number, got 2.5",
        f"{SOURCE}:6: policy.quiet_hours.enabled: expected true or false, got 'maybe'",
        f"{SOURCE}:7: policy.default_timezone: expected text, got a list",
        f"{SOURCE}:8: policy.cap_exempt_channels: expected a list like [slack, webhook], "
        "got 'slack'",
        f"{SOURCE}:10: triggers.welcome.channel: expected text, got no (YAML reads "
        "yes/no/on/off/true/false as a boolean; quote it to mean text)",
        f"{SOURCE}:10: triggers.welcome.on_first_activity: expected true or false, got 1",
        f"{SOURCE}:11: triggers.nps_detractor.max_score: expected a number, got ''",
        f"{SOURCE}:12: triggers.churn_alert: expected a mapping of settings, got a list",
    ]


def test_bad_duration_says_what_a_duration_looks_like() -> None:
    source = "\n" * 13 + "triggers: {abandoned_cart: {delay: soon}}\n"
    assert problems(source) == [
        f"{SOURCE}:14: triggers.abandoned_cart.delay: "
        "expected a duration like 30m, 2h or 7d, got 'soon'"
    ]


def test_duration_without_a_unit_is_rejected_but_zero_is_fine() -> None:
    assert problems("triggers: {abandoned_cart: {delay: 30}}") == [
        f"{SOURCE}:1: triggers.abandoned_cart.delay: "
        "expected a duration with a unit like 30s, 30m or 30d, got 30"
    ]
    assert parse("triggers: {abandoned_cart: {cooldown: 0}}") == Config()


def test_negative_duration_is_rejected() -> None:
    assert problems("journey:\n  at_risk_after: -5m\n") == [
        f"{SOURCE}:2: journey.at_risk_after: a duration cannot be negative, got '-5m'"
    ]


def test_negative_numbers_are_rejected() -> None:
    assert problems(
        """
        policy: {frequency_caps: {per_day: -1}}
        triggers:
          abandoned_cart: {min_cart_value: -10}
          browse_abandonment: {min_views: 0}
        """
    ) == [
        f"{SOURCE}:2: policy.frequency_caps.per_day: expected a whole number of 0 or more, got -1",
        f"{SOURCE}:4: triggers.abandoned_cart.min_cart_value: expected 0 or more, got -10",
        f"{SOURCE}:5: triggers.browse_abandonment.min_views: "
        "expected a whole number of 1 or more, got 0",
    ]


@pytest.mark.parametrize("holdout", ["1", "1.5", "-0.1"])
def test_holdout_must_be_a_share_below_one(holdout: str) -> None:
    assert problems(f"triggers:\n  win_back:\n    holdout: {holdout}\n") == [
        f"{SOURCE}:3: triggers.win_back.holdout: "
        f"expected a share from 0 up to but not including 1, like 0.1, got {holdout}"
    ]


def test_holdout_accepts_zero_up_to_below_one() -> None:
    assert parse("triggers: {win_back: {holdout: 0.99}}").triggers["win_back"].holdout == 0.99


def test_unknown_channel_suggests_the_closest() -> None:
    assert problems(
        """
        policy:
          cap_exempt_channels: [slack, fax]
        triggers:
          welcome: {channel: emial}
        """
    ) == [
        f"{SOURCE}:3: policy.cap_exempt_channels[1]: expected a channel "
        "(console, push, email, sms, webhook, slack, wecom), got 'fax'",
        f"{SOURCE}:5: triggers.welcome.channel: expected a channel "
        "(console, push, email, sms, webhook, slack, wecom), got 'emial'; did you mean 'email'?",
    ]


def test_post_purchase_on_must_be_an_order_event() -> None:
    assert problems("triggers:\n  post_purchase:\n    on: order_shipped\n") == [
        f"{SOURCE}:3: triggers.post_purchase.on: "
        "expected one of order_paid, order_placed, got 'order_shipped'"
    ]


@pytest.mark.parametrize("value", ["'25:00'", "'9pm'", "'7:00'", "21"])
def test_quiet_hours_must_be_hh_mm(value: str) -> None:
    (found,) = problems(f"policy:\n  quiet_hours:\n    end: {value}\n")
    assert found.startswith(
        f"{SOURCE}:3: policy.quiet_hours.end: expected a time of day as HH:MM like 21:00, got "
    )


def test_unknown_timezone_suggests_the_closest() -> None:
    assert problems("policy:\n  default_timezone: Europe/Berln\n") == [
        f"{SOURCE}:2: policy.default_timezone: expected an IANA timezone like Europe/Berlin "
        "or UTC, got 'Europe/Berln'; did you mean 'Europe/Berlin'?"
    ]


def test_template_variable_must_exist_for_that_trigger() -> None:
    (found,) = problems(
        """
        triggers:
          abandoned_cart:
            template: "{cart_total} in your cart"
        """
    )
    assert found.startswith(
        f"{SOURCE}:4: triggers.abandoned_cart.template: "
        "expected template variables of abandoned_cart ("
    )
    assert found.endswith("got {cart_total} (did you mean {cart_value}?)")


def test_template_variable_of_another_trigger_is_rejected() -> None:
    (found,) = problems("triggers: {welcome: {template: 'Your cart: {cart_value}'}}")
    assert "triggers.welcome.template: expected template variables of welcome" in found


def test_template_attribute_access_is_rejected() -> None:
    assert problems("triggers: {welcome: {template: 'Hi {first_name.__class__}'}}") == [
        f"{SOURCE}:1: triggers.welcome.template: "
        "expected plain {name} fields like {cart_value}, got {first_name.__class__}"
    ]


def test_duplicate_key_is_reported() -> None:
    assert problems("triggers:\n  welcome:\n    enabled: true\n    enabled: false\n") == [
        f"{SOURCE}:4: triggers.welcome.enabled: duplicate key, first given on line 3"
    ]


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = problems(
        """
        journey: {churned_after: never}
        triggers:
          abandoned_cart: {dealy: 1h, holdout: 2}
          nope: {}
        """
    )
    assert [line.split(": ")[1] for line in found] == [
        "journey.churned_after",
        "triggers.abandoned_cart.dealy",
        "triggers.abandoned_cart.holdout",
        "triggers.nope",
    ]


def test_config_error_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text("triggers:\n  welcome: {priority: high}\n")
    with pytest.raises(ValueError, match=r"campaigns\.yaml:2: triggers\.welcome\.priority: "):
        load_config(path)


def test_a_duration_beyond_ten_years_is_a_typo_not_a_plan() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("triggers:\n  abandoned_cart:\n    delay: 99999d\n", "t.yaml")
    assert str(err.value) == (
        "t.yaml:3: triggers.abandoned_cart.delay: 99999d is too long: at most 3650d (ten years)"
    )
    assert parse_config("triggers:\n  post_purchase:\n    delay: 3650d\n", "t.yaml")


def test_yaml_nested_too_deeply_is_a_failed_reload_for_a_running_process() -> None:
    # The live watcher reads the file itself: a RecursionError there would be a traceback.
    with pytest.raises(ConfigError) as err:
        watched_config("a: " + "[" * 5000 + "]" * 5000, "deep.yaml")
    assert str(err.value) == "deep.yaml:1: (syntax): invalid YAML: nested too deeply"
