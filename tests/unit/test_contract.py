"""The contract's JSON Schemas (docs/schemas) and the code agree.

Inputs: on a corpus of good and bad records (every field of every event type, each
value just inside and just outside its bound, plus the simulator's traffic and
generated records) the decoder accepts a record exactly when its topic's schema
validates it. Outputs: what the engine, the dead-letter writer and the dispatcher
produce validates against the schema of its topic. And the decoder never raises,
whatever bytes or JSON it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from agents.runtime import dead_letter_record
from channels.actions import Action
from channels.deliveries import delivery_record
from core.config import Config
from core.driver import Driver, Outputs
from core.durations import DAY
from core.model import TOPIC_TYPES, Event
from kairos.replay import load
from kairos.simulate import generate
from stream.events import MAX_TS, MIN_TS, Rejection, decode_event, decode_line, decode_profile

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
TS = 1_767_225_600_000
TOPIC_OF = {t: topic for topic, types in TOPIC_TYPES.items() for t in types}
MISSING = object()


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


VALIDATORS = {
    name: validator(name)
    for name in (
        "clickstream",
        "orders",
        "engagement",
        "profiles",
        "actions",
        "deliveries",
        "stage-changes",
        "dead-letters",
        "conversions",
    )
}


def accepted(record: dict[str, Any], topic: str) -> tuple[bool, bool, str]:
    """(decoder accepts, schema accepts, the decoder's error) for ``record`` on ``topic``."""
    result = decode_event(orjson.dumps(record), topic)
    by_schema = VALIDATORS[topic].is_valid(record)
    error = result.error if isinstance(result, Rejection) else ""
    return not isinstance(result, Rejection), by_schema, error


# --- the corpus: each field's values just inside (good) and outside (bad) its bound ----------

ID_GOOD = ["e", "x" * 128, "é" * 128]
ID_BAD = ["", "x" * 129, 5, None, MISSING, ["e"]]
TEXT_GOOD = [None, "", "a", "x" * 128, MISSING]
TEXT_BAD = ["x" * 129, 1, {}, True]
AMOUNT_GOOD = [0, 0.0, 12.5, 10**12, 1e12, None, MISSING]
AMOUNT_BAD = [-0.01, -1, 1e12 + 1, 10**12 + 1, "9.99", True, [1]]
QTY_GOOD = [1, 2, 2.0, 1_000_000, None, MISSING]
QTY_BAD = [0, -1, 1_000_001, 1.5, "2", True]
CURRENCY_GOOD = ["EUR", "JPY", None, MISSING]
CURRENCY_BAD = ["eur", "EURO", "EU", "E1R", "€", "", 978, True]
ISO_GOOD = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T01:00:00+01:00",
    "2026-01-01 00:00:00Z",
    "2026-01-01T00:00Z",
    "2026-01-01T00:00:00.123Z",
    "1997-06-30T10:15:00-07:00",
]
TS_GOOD = [TS, MIN_TS, MAX_TS, 852_076_800_000, float(TS), *ISO_GOOD]
TS_BAD = [
    MIN_TS - 1,
    MAX_TS + 1,
    1_767_225_600,
    1_767_225_600_000_000,
    -1,
    0,
    TS + 0.5,
    "2026-01-01T00:00:00",
    "2026-01-01",
    "20260101T000000Z",
    "2026-01-01T00:00:00+0100",
    "yesterday",
    "",
    True,
    None,
    MISSING,
    [TS],
]
ITEMS_GOOD = [
    [],
    None,
    MISSING,
    [{"product_id": "p"}],
    [{"product_id": "p", "quantity": 2, "price": 1.5, "name": "extra fields are fine"}],
]
ITEMS_BAD = [
    "x",
    {},
    [1],
    [{"quantity": 1}],
    [{"product_id": "p", "quantity": 0}],
    [{"product_id": "p", "price": -1}],
    [{"product_id": ""}],
]
CHANNEL_GOOD = ["email", "sms", "push", "all"]
CHANNEL_BAD = ["pigeon", "", None, 1, MISSING]

COMMON: dict[str, tuple[list[Any], list[Any]]] = {
    "event_id": (ID_GOOD, ID_BAD),
    "customer_id": (ID_GOOD, ID_BAD),
    "ts": (TS_GOOD, TS_BAD),
    "anonymous_id": (TEXT_GOOD, TEXT_BAD),
    "session_id": (TEXT_GOOD, TEXT_BAD),
    "properties": ([{}, {"a": [1, {"b": None}]}, None, MISSING], [[], "x", 1, True]),
}
PRODUCT = (ID_GOOD, ID_BAD)
FIELDS: dict[str, dict[str, tuple[list[Any], list[Any]]]] = {
    "page_view": {"url": ([None, "", "u" * 4096, MISSING], ["u" * 4097, 5])},
    "search": {"query": ([None, "q" * 1024, MISSING], ["q" * 1025, ["q"]])},
    "product_view": {
        "product_id": PRODUCT,
        "category": (TEXT_GOOD, TEXT_BAD),
        "price": (AMOUNT_GOOD, AMOUNT_BAD),
        "currency": (CURRENCY_GOOD, CURRENCY_BAD),
    },
    "add_to_cart": {
        "product_id": PRODUCT,
        "quantity": (QTY_GOOD, QTY_BAD),
        "price": (AMOUNT_GOOD, AMOUNT_BAD),
        "currency": (CURRENCY_GOOD, CURRENCY_BAD),
    },
    "remove_from_cart": {"product_id": PRODUCT, "quantity": (QTY_GOOD, QTY_BAD)},
    "checkout_started": {
        "cart_value": (AMOUNT_GOOD, AMOUNT_BAD),
        "currency": (CURRENCY_GOOD, CURRENCY_BAD),
    },
    "order_placed": {
        "order_id": PRODUCT,
        "total": (AMOUNT_GOOD, AMOUNT_BAD),
        "currency": (CURRENCY_GOOD, CURRENCY_BAD),
        "items": (ITEMS_GOOD, ITEMS_BAD),
    },
    **{t: {"order_id": PRODUCT} for t in ("order_paid", "order_cancelled", "order_refunded")},
    "order_shipped": {"order_id": PRODUCT},
    **{
        t: {"campaign_id": (TEXT_GOOD, TEXT_BAD), "action_id": (TEXT_GOOD, TEXT_BAD)}
        for t in ("email_open", "email_click", "push_open", "sms_click", "in_app_click")
    },
    "app_open": {},
    "session_start": {},
    "subscribe": {"channel": (CHANNEL_GOOD, CHANNEL_BAD)},
    "unsubscribe": {"channel": (CHANNEL_GOOD, CHANNEL_BAD)},
    "nps": {"score": ([0, 10, 7, 7.0], [-1, 11, 99, 6.5, "7", True, None, MISSING])},
    "review": {"score": ([0, 5, 4.5, 1], [5.5, -0.5, 6, "4", None, MISSING])},
    "deal_won": {
        "deal_id": (TEXT_GOOD, TEXT_BAD),
        "total": (AMOUNT_GOOD, AMOUNT_BAD),
        "currency": (CURRENCY_GOOD, CURRENCY_BAD),
    },
}


def base(etype: str) -> dict[str, Any]:
    record: dict[str, Any] = {"event_id": "e1", "type": etype, "customer_id": "c1", "ts": TS}
    for name, (good, _) in FIELDS[etype].items():
        if good[0] is not MISSING:
            record[name] = good[0]
    return record


def with_value(record: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    out = dict(record)
    if value is MISSING:
        out.pop(name, None)
    else:
        out[name] = value
    return out


def corpus() -> list[tuple[str, dict[str, Any], bool]]:
    """(topic, record, expected valid) for every field of every type, good and bad values."""
    cases = []
    for etype, fields in FIELDS.items():
        topic, record = TOPIC_OF[etype], base(etype)
        for name, (good, bad) in {**COMMON, **fields}.items():
            cases += [(topic, with_value(record, name, v), True) for v in good]
            cases += [(topic, with_value(record, name, v), False) for v in bad]
    other = {"clickstream": "nps", "orders": "page_view", "engagement": "order_paid"}
    for topic in TOPIC_TYPES:
        record = base("page_view")
        cases += [(topic, with_value(record, "type", v), False) for v in ("teleport", 3, None)]
        cases.append((topic, base(other[topic]), False))  # a type of another topic
    # Fields of other types are ignored by both, whatever their value.
    cases.append(("clickstream", {**base("page_view"), "score": 99, "currency": "bad"}, True))
    return cases


CORPUS = corpus()


def test_the_corpus_covers_every_type_with_good_and_bad_records() -> None:
    assert {r["type"] for _, r, _ in CORPUS if "type" in r} >= set(TOPIC_OF)
    good = sum(ok for _, _, ok in CORPUS)
    assert good > 300 and len(CORPUS) - good > 400


@pytest.mark.parametrize("topic", list(TOPIC_TYPES))
def test_decoder_and_schema_agree_on_every_corpus_record(topic: str) -> None:
    wrong = []
    for t, record, expected in CORPUS:
        if t != topic:
            continue
        by_decoder, by_schema, error = accepted(record, topic)
        if not (by_decoder == by_schema == expected):
            wrong.append(f"{record}: decoder {by_decoder} ({error}), schema {by_schema}")
    assert not wrong, "\n".join(wrong[:10])


def test_decoder_and_schema_accept_the_simulators_traffic() -> None:
    profiles = VALIDATORS["profiles"]
    for topic, key, value in generate(200, 3000, 11, TS, 30 * 86_400_000):
        if topic == "profiles":
            assert profiles.is_valid(value), value
            assert not isinstance(decode_profile(orjson.dumps(value), key.encode()), Rejection)
            continue
        assert value is not None
        assert accepted(value, topic)[:2] == (True, True), value


# Known differences, by design: the schema checks an ISO time's form, the decoder also
# its calendar and its range; the record key and the 64 KiB limit are not in a value.
STRICTER = [
    ("clickstream", {**base("page_view"), "ts": "2026-02-30T00:00:00Z"}),
    ("clickstream", {**base("page_view"), "ts": "1969-07-20T20:17:00Z"}),
    ("clickstream", {**base("page_view"), "ts": "2150-01-01T00:00:00Z"}),
    ("clickstream", {**base("page_view"), "url": "u" * 4096, "properties": {"x": "y" * 70_000}}),
]


@pytest.mark.parametrize(("topic", "record"), STRICTER)
def test_where_the_schema_cannot_say_it_the_decoder_is_stricter(
    topic: str, record: dict[str, Any]
) -> None:
    by_decoder, by_schema, _ = accepted(record, topic)
    assert by_schema and not by_decoder


PROFILES_GOOD = [
    {},
    {"email": "a@b.c", "timezone": "Europe/Berlin", "locale": "de-DE", "updated_at": TS},
    {"consent": {"email": False, "push": True}, "attributes": {"first_name": "Ann"}},
    {"consent": None, "attributes": None, "updated_at": None, "phone": None},
    {"updated_at": "2026-01-01T00:00:00Z", "push_token": "t" * 4096},
]
PROFILES_BAD = [
    {"consent": {"email": "yes"}},
    {"consent": False},
    {"consent": []},
    {"attributes": "x"},
    {"attributes": 0},
    {"email": "e" * 321},
    {"timezone": 5},
    {"updated_at": 1_767_225_600},
    {"updated_at": "2026-01-01"},
    [],
    "profile",
]


@pytest.mark.parametrize(
    ("value", "expected"), [(v, True) for v in PROFILES_GOOD] + [(v, False) for v in PROFILES_BAD]
)
def test_decoder_and_schema_agree_on_profiles(value: Any, expected: bool) -> None:
    by_decoder = not isinstance(decode_profile(orjson.dumps(value), b"c1"), Rejection)
    assert by_decoder == VALIDATORS["profiles"].is_valid(value) == expected


# --- generated records: near-valid events with random good and bad values -------------------

ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def field_values(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(good + bad)


@st.composite
def near_valid_records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    etype = draw(st.sampled_from(sorted(FIELDS)))
    record: dict[str, Any] = {"type": etype}
    for name, (good, bad) in {**COMMON, **FIELDS[etype]}.items():
        value = draw(field_values(good, bad) if draw(st.booleans()) else st.sampled_from(good))
        if value is not MISSING:
            record[name] = value
    if draw(st.booleans()):
        record.setdefault("properties", draw(ANY_JSON))
    return TOPIC_OF[etype], record


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(near_valid_records())
def test_decoder_and_schema_agree_on_generated_records(case: tuple[str, dict[str, Any]]) -> None:
    topic, record = case
    by_decoder, by_schema, error = accepted(record, topic)
    assert by_decoder == by_schema, f"decoder {by_decoder} ({error}), schema {by_schema}"


# --- the decoder never raises -------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=300), st.sampled_from(list(TOPIC_TYPES)), st.none() | st.binary(max_size=20)
)
def test_arbitrary_bytes_never_raise(raw: bytes, topic: str, key: bytes | None) -> None:
    result = decode_event(raw, topic, key)
    assert isinstance(result, Event | Rejection)
    if isinstance(result, Rejection):
        assert result.error and result.reason
    assert isinstance(decode_profile(raw, key), tuple | Rejection)
    assert decode_line(raw) is not None


@settings(max_examples=500, deadline=None)
@given(ANY_JSON, st.sampled_from(list(TOPIC_TYPES)))
def test_arbitrary_json_never_raises(value: Any, topic: str) -> None:
    raw = orjson.dumps(value)
    result = decode_event(raw, topic, b"c1")
    assert isinstance(result, Event | Rejection)
    assert isinstance(decode_profile(raw, b"c1"), tuple | Rejection)
    assert decode_line(raw) is not None


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted({*COMMON, "type", "score", "items"})), ANY_JSON))
def test_arbitrary_values_of_contract_fields_never_raise(record: dict[str, Any]) -> None:
    for topic in TOPIC_TYPES:
        raw = orjson.dumps(record)
        assert isinstance(decode_event(raw, topic), Event | Rejection)
    assert decode_line(orjson.dumps({**record, "type": "nps"})) is not None


# --- outputs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Actions, stage changes and conversions of the core on 60 days of simulated traffic."""
    path = tmp_path_factory.mktemp("contract") / "events.jsonl"
    with open(path, "wb") as out:
        for topic, key, value in generate(150, 6000, 4, TS, 60 * 86_400_000):
            line = {"topic": topic, "customer_id": key, "value": value}
            out.write(orjson.dumps(line if topic == "profiles" else value) + b"\n")
    loaded = load([path])
    produced = Outputs()
    driver = Driver(Config(), produced)
    for _, customer_id, profile in loaded.profiles:
        driver.profile(customer_id, profile)
    for ev in loaded.events:
        driver.send(ev)
    driver.advance(loaded.events[-1].ts + 60 * DAY)  # the journey's at-risk and churn timers
    return {
        "actions": [d.to_record() for d in produced.decisions],
        "stage-changes": [c.to_record() for c in produced.stage_changes],
        "conversions": [c.to_record() for c in produced.conversions],
    }


@pytest.mark.parametrize("topic", ["actions", "stage-changes", "conversions"])
def test_what_the_core_writes_validates_against_its_schema(
    outputs: dict[str, list[dict[str, Any]]], topic: str
) -> None:
    records = outputs[topic]
    assert records
    for record in records:
        errors = [
            e.message for e in VALIDATORS[topic].iter_errors(orjson.loads(orjson.dumps(record)))
        ]
        assert not errors, (record, errors)


@pytest.mark.parametrize(
    ("value", "key"), [(b"{not json", b"c1"), (b"\xff\xfe", None), (None, b"c1"), (b"{}", b"\xff")]
)
def test_dead_letters_validate_against_their_schema(value: bytes | None, key: bytes | None) -> None:
    record = orjson.loads(orjson.dumps(dead_letter_record("clickstream", 3, 42, key, value, "why")))
    assert VALIDATORS["dead-letters"].is_valid(record), record


@pytest.mark.parametrize(
    "outcome",
    [
        "delivered",
        "failed",
        "retrying",
        "dead",
        "disabled",
        "suppressed_consent",
        "suppressed_priority",
        "suppressed_frequency_cap",
        "deferred_frequency_cap",
    ],
)
def test_deliveries_validate_against_their_schema(outcome: str) -> None:
    action = Action("a1", "c1", "welcome", "email", "send")
    record = delivery_record(action, outcome, attempts=1, latency_ms=12, deliver_at=TS)
    assert VALIDATORS["deliveries"].is_valid(orjson.loads(orjson.dumps(record))), record


def test_schema_bounds_are_the_decoders() -> None:
    ts = json.loads((SCHEMAS / "clickstream.json").read_text())["$defs"]["ts"]["oneOf"][0]
    assert (ts["minimum"], ts["maximum"]) == (MIN_TS, MAX_TS)
