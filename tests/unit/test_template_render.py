"""What customers read: every template rendered from real decisions of the core.

The simulator's traffic over 200 days is replayed through the core (every trigger
fires), and each decision is rendered the way the dispatcher renders it
(``channels.messages.render_message``) for customers in several time zones and
languages: the built-in default templates, ``config/triggers.yaml``'s, the README's
examples and one template using every variable of the trigger. No rendered text may
contain a bare number that looks like a timestamp.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml

from channels.actions import Action, action_from_record
from channels.contacts import Contact
from channels.messages import render_message
from core.config import Config
from core.config_file import ConfigError, load_config, parse_config
from core.durations import DAY
from core.model import Decision
from core.templates import TEMPLATE_VARS, TIME_VARS, render, template_fields
from core.triggers import TRIGGER_TYPES
from kairos.replay import load, replay
from kairos.simulate import generate

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("en", "de", "fr", "ja", "pt_BR", "en_GB")
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EXPIRES = 1_796_143_560_561  # the raw number a customer once read in an offer

# Ten or more digits in a row, or grouped by thousands separators (1,796,143,560,561).
_TIMESTAMP_LIKE = re.compile(
    r"(?<![\w.,])(?:\d{10,}|\d{1,3}(?:[,.\u00a0\u202f' ]\d{3}){3,})(?![\w])"
)


def as_action(decision: Decision) -> Action:
    """The decision as the dispatcher reads it back from ``actions``."""
    action = action_from_record(decision.to_record())
    assert isinstance(action, Action), action
    return action


def timestamps_in(text: str) -> list[str]:
    return _TIMESTAMP_LIKE.findall(text)


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> list[Decision]:
    path = tmp_path_factory.mktemp("traffic") / "events.jsonl"
    with open(path, "wb") as out:
        for topic, key, value in generate(300, 20_000, 3, START, 200 * 86_400_000, b2b=0.3):
            record = {"topic": topic, "customer_id": key, "value": value}
            out.write(orjson.dumps(record if topic == "profiles" else value) + b"\n")
    # the example of audiences and lead scoring, with every trigger on: segment, lead,
    # membership and recommendation triggers fire too
    cfg = everything_on(load_config(ROOT / "config" / "audiences.yaml"))
    result = replay(load([path]), cfg, keep_decisions=True)
    assert result.decisions is not None
    return result.decisions


def everything_on(base: Config | None = None) -> Config:
    """Every trigger on, membership and recommendations too (off by default), with points
    lapsing within the run."""
    base = base or Config()
    triggers = {name: replace(t, enabled=True) for name, t in base.triggers.items()}
    membership = replace(base.membership, enabled=True, expiry=90 * DAY, review_bonus=50)
    recommend = replace(base.recommend, enabled=True)
    return replace(base, triggers=triggers, membership=membership, recommend=recommend)


@pytest.fixture(scope="module")
def contacts(decisions: list[Decision]) -> dict[str, Contact]:
    """The directory the dispatcher would hold: a time zone and a language per customer."""
    zones = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Sydney")
    out = {}
    for d in decisions:
        n = zlib.crc32(d.customer_id.encode())
        profile = {
            "email": f"{d.customer_id}@example.com",
            "timezone": zones[n % len(zones)],
            "locale": LOCALES[n % len(LOCALES)],
            "first_name": "Ann",
            "consent": {},
        }
        out[d.customer_id] = Contact(profile)
    return out


def readme_templates() -> dict[str, list[str]]:
    """The templates of the README's YAML examples, by trigger."""
    text = (ROOT / "README.md").read_text()
    found: dict[str, list[str]] = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        if "template:" not in block:
            continue
        for name, settings in (yaml.safe_load(block).get("triggers") or {}).items():
            variants = (settings.get("variants") or {}).values()  # core.variants
            for owner in (settings, *variants):
                if "template" in owner:
                    found.setdefault(name, []).append(owner["template"])
    return found


def templates_of(trigger: str) -> list[str]:
    every_variable = " ".join(f"<{{{name}}}>" for name in sorted(TEMPLATE_VARS[trigger]))
    return [
        TRIGGER_TYPES[trigger]().template,
        load_config(ROOT / "config" / "triggers.yaml").triggers[trigger].template,
        every_variable,
        *readme_templates().get(trigger, []),
    ]


def test_every_trigger_fires_on_the_traffic(decisions: list[Decision]) -> None:
    assert {d.trigger for d in decisions} == set(TRIGGER_TYPES)


def test_the_readme_has_template_examples_and_they_are_valid() -> None:
    examples = readme_templates()
    assert "limited_time_offer" in examples
    for trigger, templates in examples.items():
        for template in templates:
            assert template_fields(template) <= TEMPLATE_VARS[trigger], template


def test_no_rendered_message_shows_a_timestamp(
    decisions: list[Decision], contacts: dict[str, Contact]
) -> None:
    rendered = 0
    bad = []
    for trigger in TRIGGER_TYPES:
        mine = [d for d in decisions if d.trigger == trigger][:300]
        for template in templates_of(trigger):
            for d in mine:
                subject, body = render_message(as_action(d), template, contacts[d.customer_id])
                rendered += 1
                if timestamps_in(subject) or timestamps_in(body):
                    bad.append(f"{trigger}: {template!r} -> {body!r}")
    assert not bad, "\n".join(bad[:10])
    assert rendered > 5_000


def test_offer_expiry_reads_as_local_time_in_the_customers_language(
    decisions: list[Decision], contacts: dict[str, Contact]
) -> None:
    template = TRIGGER_TYPES["limited_time_offer"]().template
    offers = [d for d in decisions if d.trigger == "limited_time_offer"]
    for d in offers[:50]:
        contact = contacts[d.customer_id]
        profile: dict[str, Any] = contact.profile or {}
        local = datetime.fromtimestamp(
            d.payload["expires_at"] / 1000, ZoneInfo(profile["timezone"])
        )
        _, body = render_message(as_action(d), template, contact)
        assert str(d.payload["expires_at"]) not in body
        assert body.endswith(local.tzname() or "")
        minutes = f":{local.minute:02d}"
        assert minutes in body  # the local wall-clock time, not UTC's hour by accident
        if profile["locale"] == "de":
            assert f"{local.hour:02d}:{local.minute:02d}" in body


def test_the_reported_offer_renders_for_people() -> None:
    values = {
        "discount_percent": 10,
        "product_id": "sku-0304",
        "code": "KLA9-V2HV",
        "expires_at": EXPIRES,
    }
    template = TRIGGER_TYPES["limited_time_offer"]().template
    assert render(template, {**values, "timezone": "Europe/Berlin", "locale": "de"}) == (
        "10% off sku-0304 with code KLA9-V2HV, until 1. Dez., 17:46 CET"
    )
    assert render(template, {**values, "timezone": "America/New_York", "locale": "en"}) == (
        "10% off sku-0304 with code KLA9-V2HV, until Dec 1, 11:46 AM EST"
    )


def test_a_per_placeholder_format_uses_the_customers_zone_and_month_names() -> None:
    values = {"expires_at": EXPIRES, "timezone": "Europe/Berlin"}
    assert render("{expires_at:%d %b %H:%M}", values) == "01 Dec 17:46"
    assert render("{expires_at:%d %b %H:%M}", {**values, "locale": "de"}) == "01 Dez. 17:46"
    assert render("{expires_at:%A %d %B %Y, %Z}", {**values, "locale": "fr"}) == (
        "mardi 01 décembre 2026, CET"
    )


def test_unknown_zone_and_language_fall_back_to_the_defaults() -> None:
    values = {"expires_at": EXPIRES, "timezone": "Mars/Olympus", "locale": "xx-??"}
    assert render("{expires_at:%H:%M %Z}", values) == "16:46 UTC"
    shown = render("{expires_at:%H:%M %Z}", values, default_timezone="Asia/Tokyo")
    assert shown == "01:46 JST"


def test_amounts_carry_their_currency() -> None:
    cart = {"cart_value": 59.9, "currency": "EUR"}
    assert render("worth {cart_value}", cart) == "worth €59.90"
    assert render("worth {cart_value}", {**cart, "locale": "de"}) == "worth 59,90 €"
    assert render("worth {cart_value} {currency}", cart) == "worth 59.90 EUR"
    assert render("{total}", {"total": 5990, "currency": "JPY", "locale": "en"}) == "¥5,990"
    assert render("{total:.1f}", {"total": 5990, "currency": "JPY"}) == "5990.0"


def test_cart_items_read_as_a_list() -> None:
    items = [{"product_id": "sku-1", "quantity": 2, "price": 1.0}, {"product_id": "sku-2"}]
    assert render("{items}", {"items": items}) == "2 x sku-1, sku-2"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{code:%d %b}", "date formats like %d %b apply to times only"),
        ("{expires_at:.2f}", "expected a date format like {expires_at:%d %b %H:%M}"),
        ("{expires_at:%Q}", "expected a date format"),
    ],
)
def test_config_validation_names_a_wrong_format(template: str, message: str) -> None:
    text = f'triggers:\n  limited_time_offer:\n    template: "{template}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml")
    assert message in str(caught.value)


def test_time_variables_are_the_payloads_epoch_fields() -> None:
    assert {"expires_at", "last_active", "deliver_at"} <= TIME_VARS
