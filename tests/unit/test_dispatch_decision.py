"""The dispatcher's decision, without Redis: action, caps' verdict, contact, config -> outcome.

``channels/decision.py`` is what the dispatcher decides; ``tests/integration/
test_dispatcher.py`` checks the same rules end to end through a running dispatcher.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import get_args

import orjson
import pytest

from channels.actions import ACTION_STATUSES, Action, BadAction, action_from_record, parse_action
from channels.contacts import Contact
from channels.decision import (
    DecisionStatus,
    DispatchDecision,
    capped,
    decide,
    next_round,
    priority,
    queue_at,
    screen,
)
from channels.deliveries import DeliveryStatus, PolicyOutcome, ProviderOutcome
from channels.messages import build_message, render_message
from channels.policy import Verdict
from core.config import Config
from core.config_file import parse_config

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
NOW = 1_767_225_600_000
MINUTE = 60_000
OK = Verdict("ok")
CFG = Config()
PUSH = Action(
    action_id="a1",
    customer_id="c1",
    trigger="abandoned_cart",
    channel="push",
    status="send",
    decided_at=NOW,
    payload={"item_count": 2},
)
OFFER = dataclasses.replace(
    PUSH, trigger="limited_time_offer", payload={"code": "X1", "expires_at": NOW + 30 * MINUTE}
)
ALERT = dataclasses.replace(PUSH, trigger="churn_alert", channel="slack")
ANA = Contact({"email": "ana@x.io", "push_token": "tok-1", "first_name": "Ana"})


def config(text: str) -> Config:
    return parse_config(textwrap.dedent(text), "test.yaml")


# --- the decision ------------------------------------------------------------------------------


def test_an_allowed_action_under_its_caps_is_sent() -> None:
    assert decide(PUSH, CFG, ANA, OK) == DispatchDecision("send")


def test_a_trigger_switched_off_since_the_decision_is_not_sent() -> None:
    cfg = config("triggers:\n  abandoned_cart:\n    enabled: false\n")
    assert decide(PUSH, cfg, ANA, OK) == DispatchDecision(
        "disabled", "trigger abandoned_cart is disabled"
    )


def test_withdrawn_consent_is_respected_before_the_caps_are_asked() -> None:
    for contact in (
        Contact({"consent": {"push": False}}),
        Contact(optouts=frozenset({"push"})),
        Contact(optouts=frozenset({"all"})),
    ):
        # screen decides without the caps: nothing is reserved for a message not sent
        assert screen(PUSH, CFG, contact) == DispatchDecision(
            "suppressed_consent", "no consent for push"
        )


def test_internal_channels_need_no_consent_and_ignore_the_caps() -> None:
    nobody = Contact(optouts=frozenset({"all"}))
    assert not capped(CFG, ALERT)
    assert decide(ALERT, CFG, nobody, Verdict("capped", NOW + MINUTE, "per_day")).status == "send"


def test_a_higher_priority_trigger_within_the_window_wins() -> None:
    verdict = Verdict("priority", detail="limited_time_offer")
    assert decide(PUSH, CFG, ANA, verdict) == DispatchDecision(
        "suppressed_priority",
        "limited_time_offer has higher priority within the priority window",
    )


def test_a_capped_message_is_deferred_until_the_cap_frees_up() -> None:
    free_at = NOW + 60 * MINUTE
    assert decide(PUSH, CFG, ANA, Verdict("capped", free_at, "per_hour_push")) == (
        DispatchDecision(
            "deferred_frequency_cap",
            f"frequency cap per_hour_push: deferred until {free_at}",
            deliver_at=free_at,
        )
    )


@pytest.mark.parametrize("free_in", [30, 31, 600])  # the offer ends 30 minutes from now
def test_an_offer_that_ends_before_the_cap_frees_up_is_dropped(free_in: int) -> None:
    free_at = NOW + free_in * MINUTE
    outcome = decide(OFFER, CFG, ANA, Verdict("capped", free_at, "per_day"))
    assert outcome.status == "suppressed_frequency_cap"
    assert outcome.reason == (
        f"frequency cap per_day: the offer expires at {NOW + 30 * MINUTE}, before {free_at}"
    )


def test_an_offer_that_outlives_the_cap_is_deferred() -> None:
    free_at = NOW + 29 * MINUTE
    outcome = decide(OFFER, CFG, ANA, Verdict("capped", free_at, "per_day"))
    assert (outcome.status, outcome.deliver_at) == ("deferred_frequency_cap", free_at)


def test_priority_comes_from_the_config_and_an_unknown_trigger_counts_zero() -> None:
    cfg = config("triggers:\n  abandoned_cart:\n    priority: 70\n")
    assert priority(cfg, PUSH) == 70
    assert priority(cfg, dataclasses.replace(PUSH, trigger="retired_trigger")) == 0


# --- intake and later rounds ---------------------------------------------------------------------


def test_sends_are_due_now_quiet_hours_holds_at_deliver_at_the_rest_never() -> None:
    held = dataclasses.replace(
        PUSH, status="deferred_quiet_hours", payload={"deliver_at": NOW + 9 * 60 * MINUTE}
    )
    assert queue_at(PUSH, NOW) == NOW
    assert queue_at(held, NOW) == NOW + 9 * 60 * MINUTE
    for status in ("held_out", "shadow", "suppressed_cooldown", "disabled"):
        assert queue_at(dataclasses.replace(PUSH, status=status), NOW) is None  # type: ignore[arg-type]


def test_a_provider_that_is_down_gets_rounds_doubling_up_to_15_minutes() -> None:
    waits = [
        next_round(
            dataclasses.replace(PUSH, redeliveries=n),
            NOW,
            cooldown_s=30,
            give_up_after_s=6 * 3600,
        )
        for n in range(7)
    ]
    assert [(w or 0) - NOW for w in waits] == [
        30_000,
        60_000,
        120_000,
        240_000,
        480_000,
        900_000,
        900_000,
    ]


def test_rounds_stop_after_the_give_up_time_or_at_the_offers_end() -> None:
    old = dataclasses.replace(PUSH, decided_at=NOW - 6 * 3600 * 1000)
    assert next_round(old, NOW, cooldown_s=30, give_up_after_s=6 * 3600) is None
    assert next_round(OFFER, NOW, cooldown_s=30, give_up_after_s=6 * 3600) == NOW + 30_000
    ending = dataclasses.replace(OFFER, payload={"expires_at": NOW + 30_000})
    assert next_round(ending, NOW, cooldown_s=30, give_up_after_s=6 * 3600) is None


# --- the typed record --------------------------------------------------------------------------


def test_an_actions_record_is_parsed_once_and_stored_as_it_came() -> None:
    record = {
        "action_id": "a1",
        "trigger": "abandoned_cart",
        "customer_id": "c1",
        "channel": "push",
        "decided_at": NOW,
        "status": "send",
        "reason": "cart abandoned",
        "payload": {"item_count": 2},
        "source_event_ids": ["e1", "e2"],
    }
    action = parse_action(orjson.dumps(record))
    assert isinstance(action, Action)
    assert action.source_event_ids == ("e1", "e2")
    assert orjson.loads(action.to_json()) == record
    later = dataclasses.replace(action, redeliveries=2)
    assert parse_action(later.to_json()) == later


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty record"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"status": "send", "customer_id": "c", "trigger": "t", "channel": "push"}', "action_id"),
        (
            b'{"action_id": "a", "status": "sent", "customer_id": "c", "trigger": "t", '
            b'"channel": "push"}',
            "unknown status 'sent'",
        ),
        (
            b'{"action_id": "a", "status": "send", "customer_id": "c", "trigger": "t", '
            b'"channel": "push", "payload": [1]}',
            "payload",
        ),
    ],
)
def test_a_record_that_is_not_an_action_says_why(raw: bytes, reason: str) -> None:
    parsed = parse_action(raw)
    assert isinstance(parsed, BadAction)
    assert reason in parsed.reason


def test_the_status_types_are_the_contracts() -> None:
    def enum(schema: str, field: str) -> set[str]:
        return set(json.loads((SCHEMAS / schema).read_text())["properties"][field]["enum"])

    assert enum("actions.json", "status") == ACTION_STATUSES
    delivery = set(get_args(ProviderOutcome)) | set(get_args(PolicyOutcome))
    assert delivery == enum("deliveries.json", "outcome")
    assert set(get_args(DeliveryStatus)) == delivery
    # every decision but send is recorded on deliveries as it is named
    assert set(get_args(DecisionStatus)) - {"send"} <= set(get_args(PolicyOutcome))


def test_optional_fields_may_be_missing() -> None:
    action = action_from_record(
        {"action_id": "a", "status": "send", "customer_id": "c", "trigger": "t", "channel": "sms"}
    )
    assert action == Action("a", "c", "t", "sms", "send")


# --- the message -------------------------------------------------------------------------------


def test_template_renders_payload_and_contact_fields_first_line_as_subject() -> None:
    action = dataclasses.replace(PUSH, payload={"item_count": 2, "cart_value": 9.5})
    subject, body = render_message(
        action, "Hi {first_name}\n{item_count} items, {cart_value:.2f} ({action_id})", ANA
    )
    assert (subject, body) == ("Hi Ana", "2 items, 9.50 (a1)")
    assert render_message(action, "One line {customer_id}", Contact()) == (
        "One line c1",
        "One line c1",
    )


def test_times_read_in_the_policys_default_zone_when_the_customer_has_none() -> None:
    noon_utc = 1_796_083_200_000 + 12 * 3_600_000  # 2026-12-01 12:00 UTC
    action = dataclasses.replace(PUSH, payload={"expires_at": noon_utc})
    tokyo, _ = render_message(action, "until {expires_at:%H:%M}", Contact(), "Asia/Tokyo")
    utc, _ = render_message(action, "until {expires_at:%H:%M}", Contact())
    assert (tokyo, utc) == ("until 21:00", "until 12:00")


def test_an_overridden_channel_still_addresses_the_actions_channel() -> None:
    msg = build_message(PUSH, "Hi {first_name}", ANA, "console")
    assert (msg.channel, msg.to, msg.created_at) == ("console", "tok-1", NOW)


def test_channel_override_builds_only_the_console() -> None:
    from channels.providers.console import ConsoleChannel
    from kairos.dispatcher_cli import build_channels

    (channel,) = build_channels("console")
    assert isinstance(channel, ConsoleChannel)
