"""Decoding input records exactly per the contract: every bad record gets a clear reason."""

from __future__ import annotations

import orjson
import pytest

from core.model import Event
from stream.events import (
    MAX_RECORD_BYTES,
    ProfileLine,
    Rejection,
    decode_event,
    decode_line,
    decode_profile,
)

TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def raw(**fields: object) -> bytes:
    base: dict[str, object] = {"event_id": "e1", "customer_id": "c1", "ts": TS}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_add_to_cart_decodes_into_a_typed_event_with_default_quantity() -> None:
    ev = decode_event(raw(type="add_to_cart", product_id="p1", price=9.5), "clickstream", b"c1")
    assert isinstance(ev, Event)
    assert (ev.type, ev.product_id, ev.quantity, ev.price, ev.ts) == (
        "add_to_cart",
        "p1",
        1,
        9.5,
        TS,
    )


@pytest.mark.parametrize(
    "ts", ["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"]
)
def test_iso_timestamps_with_an_offset_equal_epoch_milliseconds(ts: str) -> None:
    ev = decode_event(raw(type="page_view", ts=ts), "clickstream", b"c1")
    assert isinstance(ev, Event) and ev.ts == TS


def test_order_placed_items_are_parsed() -> None:
    items = [{"product_id": "p1", "quantity": 2, "price": 3.0}, {"product_id": "p2"}]
    ev = decode_event(
        raw(type="order_placed", order_id="o1", total=6, items=items), "orders", b"c1"
    )
    assert isinstance(ev, Event)
    assert [(i.product_id, i.quantity, i.price) for i in ev.items] == [
        ("p1", 2, 3.0),
        ("p2", 1, 0.0),
    ]


@pytest.mark.parametrize(
    ("record", "topic", "reason", "message"),
    [
        (b"{not json", "clickstream", "malformed", "malformed JSON"),
        (b"[1, 2]", "clickstream", "malformed", "expected a JSON object, got a list"),
        (
            raw(type="page_view", event_id=...),
            "clickstream",
            "missing_field",
            "missing required field 'event_id'",
        ),
        (
            raw(type="page_view", customer_id=...),
            "clickstream",
            "missing_field",
            "missing required field 'customer_id'",
        ),
        (
            raw(type="page_view", ts=...),
            "clickstream",
            "missing_field",
            "missing required field 'ts'",
        ),
        (raw(), "clickstream", "missing_field", "missing required field 'type'"),
        (
            raw(type="teleport"),
            "clickstream",
            "unknown_type",
            "unknown event type 'teleport' for topic 'clickstream'",
        ),
        (
            raw(type="order_placed", order_id="o"),
            "clickstream",
            "unknown_type",
            "for topic 'clickstream'",
        ),
        (
            raw(type="page_view", event_id=42),
            "clickstream",
            "wrong_type",
            "field 'event_id' must be a string, got an integer",
        ),
        (
            raw(type="page_view", event_id="x" * 129),
            "clickstream",
            "wrong_value",
            "longer than 128",
        ),
        (raw(type="page_view", ts="yesterday"), "clickstream", "bad_ts", "not an ISO-8601 time"),
        (
            raw(type="page_view", ts="2026-01-01T00:00:00"),
            "clickstream",
            "bad_ts",
            "needs a UTC offset",
        ),
        (raw(type="page_view", ts=1_767_225_600), "clickstream", "bad_ts", "looks like seconds"),
        (
            raw(type="page_view", ts=True),
            "clickstream",
            "wrong_type",
            "field 'ts' must be epoch milliseconds",
        ),
        (
            raw(type="product_view"),
            "clickstream",
            "missing_field",
            "missing required field 'product_id'",
        ),
        (
            raw(type="add_to_cart", product_id="p", quantity=0),
            "clickstream",
            "wrong_value",
            "'quantity' must be > 0",
        ),
        (
            raw(type="add_to_cart", product_id="p", quantity=1.5),
            "clickstream",
            "wrong_type",
            "'quantity' must be an integer",
        ),
        (
            raw(type="add_to_cart", product_id="p", price=-1),
            "clickstream",
            "wrong_value",
            "'price' must be >= 0",
        ),
        (
            raw(type="add_to_cart", product_id="p", price="9.99"),
            "clickstream",
            "wrong_type",
            "'price' must be a number",
        ),
        (raw(type="order_placed"), "orders", "missing_field", "'order_id'"),
        (
            raw(type="order_placed", order_id="o", items=[{"quantity": 1}]),
            "orders",
            "missing_field",
            "items[0]: missing required field 'product_id'",
        ),
        (raw(type="unsubscribe"), "engagement", "missing_field", "'channel'"),
        (
            raw(type="unsubscribe", channel="fax"),
            "engagement",
            "wrong_value",
            "must be one of email, sms, push, all",
        ),
        (raw(type="nps", score="ten"), "engagement", "wrong_type", "'score' must be a number"),
        (
            raw(type="page_view", properties=[1]),
            "clickstream",
            "wrong_type",
            "'properties' must be an object",
        ),
        (
            raw(type="page_view", customer_id="c2"),
            "clickstream",
            "key_mismatch",
            "does not equal the record key 'c1'",
        ),
    ],
)
def test_bad_records_are_rejected_with_a_clear_reason(
    record: bytes, topic: str, reason: str, message: str
) -> None:
    result = decode_event(record, topic, b"c1")
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert message in result.error


def test_oversized_records_are_rejected_before_parsing() -> None:
    big = raw(type="page_view", url="x" * MAX_RECORD_BYTES)
    result = decode_event(big, "clickstream", b"c1")
    assert isinstance(result, Rejection) and result.reason == "oversized"
    assert f"exceeds the {MAX_RECORD_BYTES}-byte limit" in result.error


def test_a_null_value_is_rejected_not_crashing() -> None:
    result = decode_event(None, "clickstream", b"c1")
    assert isinstance(result, Rejection) and "null" in result.error


def test_profile_records_parse_consent_and_a_null_forgets() -> None:
    value = orjson.dumps(
        {"email": "a@b.c", "timezone": "Europe/Berlin", "consent": {"email": False}}
    )
    customer_id, profile = decode_profile(value, b"c1")  # type: ignore[misc]
    assert customer_id == "c1" and profile.consent == {"email": False}
    assert profile.timezone == "Europe/Berlin"
    assert decode_profile(None, b"c1") == ("c1", None)
    bad = decode_profile(orjson.dumps({"consent": {"email": "yes"}}), b"c1")
    assert isinstance(bad, Rejection) and "consent" in bad.error


# --- lines of a JSON-lines file (kairos replay, kairos publish) ----------------------------


def test_a_line_is_decoded_as_its_types_topic_would_be() -> None:
    line = raw(type="order_placed", order_id="o1", total=20, items=[{"product_id": "p1"}])
    ev = decode_line(line)
    assert isinstance(ev, Event) and ev.topic == "orders"
    assert ev == decode_event(line, "orders", b"c1")


def test_a_profiles_line_is_a_profile_record_applied_at_its_updated_at() -> None:
    value = {"timezone": "UTC", "updated_at": TS, "consent": {"push": False}}
    line = orjson.dumps({"topic": "profiles", "customer_id": "c1", "value": value})
    record = decode_line(line)
    assert isinstance(record, ProfileLine)
    assert (record.at, record.customer_id, record.profile.consent) == (TS, "c1", {"push": False})
    forget = decode_line(b'{"topic": "profiles", "customer_id": "c1", "value": null}')
    assert forget == ProfileLine(0, "c1", None)
    # ``"topic": "profiles"`` decides, whatever other keys the line has
    both = orjson.dumps({**orjson.loads(raw(type="page_view")), "topic": "profiles", "value": {}})
    assert isinstance(decode_line(both), ProfileLine)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{not json", "malformed JSON: "),
        (b"[1, 2]", "expected a JSON object"),
        (raw(), "missing required field 'type'"),
        (raw(type="teleport"), "unknown event type 'teleport' (expected one of: add_to_cart,"),
        (raw(type="nps", score=11), "field 'score' of nps must be from 0 to 10, got 11"),
        (raw(type="page_view", ts=1_767_225_600), "looks like seconds"),
        (b'{"topic": "profiles", "value": {}}', "profile record needs a 'customer_id' string"),
        (raw(type="page_view", url="x" * MAX_RECORD_BYTES), "-byte limit"),
    ],
)
def test_a_bad_line_gets_the_reason_a_record_would(line: bytes, error: str) -> None:
    result = decode_line(line)
    assert isinstance(result, Rejection) and error in result.error, result
