"""Decode and validate input records into typed events, exactly per the contract.

Errors are values here: :func:`decode_event` returns an ``Event`` or a
``Rejection`` whose ``error`` is the human-readable reason written to
``dead-letters``. :func:`decode_line` is the same decoder for a line of a
JSON-lines file (``kairos replay``, ``kairos publish``), where the topic follows
from the event's type and profile records say ``"topic": "profiles"``. The
checks are hand-written rather than schema-driven because this runs for every
record on the hot path (about 2 us per event); the contract's JSON Schemas
(``docs/schemas/``) state the same bounds, and a test holds the two to agreement.

Bounds, beyond the types: ids and names 1-128 characters (``url`` 4096, ``query``
1024); quantities whole numbers 1 to 1,000,000; prices and amounts 0 to 10^12;
currencies three capital letters (the ISO 4217 shape); an ``nps`` score a whole
number 0-10 and a ``review`` score 0-5, both required; ``ts`` from 1971 to 2100.
Real history is welcome (purchase logs from the 1990s); a ``ts`` before 1971 or
after 2100 is a unit mistake (seconds or microseconds instead of milliseconds) or
impossible, and the error says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from core.model import TOPIC_TYPES, Event, Item, Profile

MAX_RECORD_BYTES = 64 * 1024
TOPIC_OF = {etype: topic for topic, types in TOPIC_TYPES.items() for etype in types}
# Event time in epoch ms: 1971 to 2100. Seconds of any real date fall below (< 4.2e9),
# microseconds above (> 3.1e13), so each unit mistake is named for what it is.
MIN_TS = 31_536_000_000  # 1971-01-01T00:00:00Z
MAX_TS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_QUANTITY = 1_000_000
MAX_AMOUNT = 1_000_000_000_000  # prices, totals, cart values: 10^12 in any currency
SCORE_RANGE = {"nps": (0, 10), "review": (0, 5)}
_SECONDS = (MIN_TS // 1000, MAX_TS // 1000)
_MICROS = (MIN_TS * 1000, MAX_TS * 1000)
_CURRENCIES: set[str] = set()  # codes seen valid: one lookup for the common case
# ISO-8601 as RFC 3339 writes it (the JSON Schema's pattern): date, time, offset.
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_ISO_LOCAL = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
)
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_ISO_SHAPES = frozenset(  # what _ISO matches, with every digit written as 0
    f"0000-00-00{sep}00:00{seconds}{offset}".encode()
    for sep in "T "
    for seconds in ("", ":00", *(":00." + "0" * n for n in range(1, 10)))
    for offset in ("Z", "+00:00", "-00:00")
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SUB_CHANNELS = frozenset({"email", "sms", "push", "all"})
_ENGAGEMENT_CLICKS = frozenset(
    {"email_open", "email_click", "push_open", "sms_click", "in_app_click"}
)
_ORDER_FOLLOWUPS = frozenset({"order_paid", "order_shipped", "order_cancelled", "order_refunded"})


@dataclass(slots=True, frozen=True)
class Rejection:
    """A record that cannot be used, and why."""

    error: str
    reason: str  # short fixed label for the invalid-events metric


class _Invalid(Exception):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


def _text(obj: dict[str, Any], name: str, required: bool = False, limit: int = 128) -> str | None:
    value = obj.get(name)
    if type(value) is str and value and len(value) <= limit:  # the common case, first
        return value
    if value is None:
        if required:
            raise _Invalid("missing_field", f"missing required field '{name}'")
        return None
    if type(value) is not str:
        raise _Invalid("wrong_type", f"field '{name}' must be a string, got {_kind(value)}")
    if required and not value:
        raise _Invalid("wrong_value", f"field '{name}' must not be empty")
    if len(value) > limit:
        raise _Invalid("wrong_value", f"field '{name}' is longer than {limit} characters")
    return value


def _number(obj: dict[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise _Invalid("wrong_type", f"field '{name}' must be a number, got {_kind(value)}")
    if value < 0:
        raise _Invalid("wrong_value", f"field '{name}' must be >= 0, got {value}")
    if value > MAX_AMOUNT:
        raise _Invalid("wrong_value", f"field '{name}' must be at most 10^12, got {value}")
    return float(value)


def _quantity(obj: dict[str, Any], name: str = "quantity") -> int | None:
    value = _whole(obj.get(name))
    if value is None:
        return None
    if type(value) is not int:
        raise _Invalid("wrong_type", f"field '{name}' must be an integer, got {_kind(value)}")
    if value <= 0:
        raise _Invalid("wrong_value", f"field '{name}' must be > 0, got {value}")
    if value > MAX_QUANTITY:
        raise _Invalid(
            "wrong_value", f"field '{name}' must be at most {MAX_QUANTITY:,}, got {value}"
        )
    return value


def _whole(value: Any) -> Any:
    """``2.0`` as ``2``: JSON has one number type, and JSON Schema's integer includes 2.0."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _currency(obj: dict[str, Any]) -> str | None:
    value = obj.get("currency")
    if value is None:
        return None
    if type(value) is not str:
        raise _Invalid("wrong_type", f"field 'currency' must be a string, got {_kind(value)}")
    if value in _CURRENCIES:
        return value
    if not (len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()):
        raise _Invalid(
            "wrong_value",
            f"field 'currency' must be an ISO 4217 code of three capital letters like EUR, "
            f"got {value[:16]!r}",
        )
    _CURRENCIES.add(value)
    return value


def _score(obj: dict[str, Any], etype: str) -> float:
    value = obj.get("score")
    low, high = SCORE_RANGE[etype]
    if value is None:
        raise _Invalid("missing_field", f"missing required field 'score' ({etype}: {low}-{high})")
    if type(value) not in (int, float):
        raise _Invalid("wrong_type", f"field 'score' must be a number, got {_kind(value)}")
    if not low <= value <= high:
        raise _Invalid(
            "wrong_value", f"field 'score' of {etype} must be from {low} to {high}, got {value}"
        )
    if etype == "nps" and value != int(value):
        raise _Invalid("wrong_value", f"field 'score' of nps must be a whole number, got {value}")
    return value  # type: ignore[no-any-return]


def _kind(value: Any) -> str:
    return {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def parse_ts(value: Any, name: str = "ts") -> int:
    """Epoch milliseconds from an integer (ms) or an ISO-8601 string with an offset."""
    value = _whole(value)
    if type(value) is int:
        ts = value
    elif type(value) is str:
        fast = _iso_ms(value)  # the common forms; None sends the rest the general way
        if fast is not None:
            ts = fast
        else:
            if _ISO_LOCAL.fullmatch(value):
                raise _Invalid(
                    "bad_ts",
                    f"field '{name}' needs a UTC offset (e.g. +00:00 or Z): {value[:40]!r}",
                )
            try:
                if not _ISO.fullmatch(value):
                    raise ValueError(value)
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise _Invalid(
                    "bad_ts",
                    f"field '{name}' is not an ISO-8601 time like 2026-01-08T12:00:00Z: {value[:40]!r}",
                ) from None
            try:
                ts = int(parsed.timestamp() * 1000)
            except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range by its offset
                raise _Invalid("bad_ts", f"field '{name}' {value!r} is out of range") from None
    elif value is None:
        raise _Invalid("missing_field", f"missing required field '{name}'")
    else:
        raise _Invalid(
            "wrong_type",
            f"field '{name}' must be epoch milliseconds or an ISO-8601 string, got {_kind(value)}",
        )
    if not MIN_TS <= ts <= MAX_TS:
        raise _Invalid("bad_ts", f"field '{name}' {value!r} {_ts_mistake(ts)}")
    return ts


def _iso_ms(value: str) -> int | None:
    """``parse_ts`` of a valid RFC 3339 string, fast; None if ``value`` is not one of ``_ISO``'s.

    A third of the timestamps in real exports are strings: the two regular expressions
    and ``timestamp()`` cost ~3 us each time. Here a translate and a set lookup check the
    form (exactly ``_ISO``'s: its shapes with every ASCII digit as 0) and the epoch time
    is computed with the same float steps as ``int(timestamp() * 1000)``, whose aware
    form is ``(self - epoch).total_seconds()``. Anything else (a bad date, a year out of
    range) returns None, and the general path gives the value or the error as before.
    """
    if not value.isascii() or value.encode().translate(_ZEROS) not in _ISO_SHAPES:
        return None
    try:
        return int((datetime.fromisoformat(value) - _EPOCH).total_seconds() * 1000)
    except (ValueError, OverflowError):
        return None


def _ts_mistake(ts: int) -> str:
    """What an event time outside 1971-2100 most likely is."""
    if _SECONDS[0] <= ts <= _SECONDS[1]:
        return "looks like seconds: ts is epoch milliseconds (multiply by 1000)"
    if _MICROS[0] <= ts <= _MICROS[1]:
        return "looks like microseconds: ts is epoch milliseconds (divide by 1000)"
    if ts < MIN_TS:
        return "is before 1971: ts is epoch milliseconds (a unit mistake?)"
    return "is after 2100: ts is epoch milliseconds (a unit mistake?)"


def _items(obj: dict[str, Any]) -> tuple[Item, ...]:
    raw = obj.get("items")
    if raw is None:
        return ()
    if type(raw) is not list:
        raise _Invalid("wrong_type", f"field 'items' must be a list, got {_kind(raw)}")
    items = []
    for i, entry in enumerate(raw):
        if type(entry) is not dict:
            raise _Invalid("wrong_type", f"items[{i}] must be an object, got {_kind(entry)}")
        try:
            product_id = _text(entry, "product_id", True)
            quantity = _quantity(entry)
            price = _number(entry, "price")
        except _Invalid as bad:
            raise _Invalid(bad.reason, f"items[{i}]: {bad.error}") from None
        items.append(Item(product_id, quantity or 1, price or 0.0))  # type: ignore[arg-type]
    return tuple(items)


def _build(obj: dict[str, Any], topic: str, key: str | None) -> Event:
    # Every field is read with its common case inline (a valid value) and handed to
    # ``_text``/``_number``/``_quantity`` only when that fails, to get the precise error:
    # a call per field was half the cost of decoding.
    etype = obj.get("type")
    allowed = TOPIC_TYPES.get(topic)
    if type(etype) is not str or (allowed is not None and etype not in allowed):
        _bad_type(etype, topic, allowed)
    v = obj.get("event_id")
    event_id = v if type(v) is str and 0 < len(v) <= 128 else _text(obj, "event_id", True)
    v = obj.get("customer_id")
    customer_id = v if type(v) is str and 0 < len(v) <= 128 else _text(obj, "customer_id", True)
    if key is not None and key != customer_id:
        raise _Invalid(
            "key_mismatch", f"customer_id {customer_id!r} does not equal the record key {key!r}"
        )
    ts = obj.get("ts")
    if type(ts) is not int or not MIN_TS <= ts <= MAX_TS:
        ts = parse_ts(ts)
    ev = Event(event_id, etype, customer_id, ts, topic)  # type: ignore[arg-type]
    # Optional common fields are rare: look them up only when present.
    if "anonymous_id" in obj:
        ev.anonymous_id = _text(obj, "anonymous_id")
    v = obj.get("session_id")  # on most events of real logs: its common case inline too
    if v is not None:
        ev.session_id = v if type(v) is str and len(v) <= 128 else _text(obj, "session_id")
    if "properties" in obj:
        props = obj["properties"]
        if props is not None and type(props) is not dict:
            raise _Invalid(
                "wrong_type", f"field 'properties' must be an object, got {_kind(props)}"
            )
        ev.properties = props

    if etype == "product_view" or etype == "add_to_cart":
        v = obj.get("product_id")
        ev.product_id = (
            v if type(v) is str and 0 < len(v) <= 128 else _text(obj, "product_id", True)
        )
        if etype == "product_view":
            v = obj.get("category")
            ev.category = (
                v if v is None or (type(v) is str and len(v) <= 128) else _text(obj, "category")
            )
        else:
            v = obj.get("quantity")
            ev.quantity = v if type(v) is int and 0 < v <= MAX_QUANTITY else _quantity(obj) or 1
        v = obj.get("price")
        ev.price = v if type(v) is float and 0 <= v <= MAX_AMOUNT else _number(obj, "price")
        v = obj.get("currency")
        ev.currency = v if v is None or (type(v) is str and v in _CURRENCIES) else _currency(obj)
    elif etype == "page_view":
        v = obj.get("url")
        ev.url = (
            v
            if v is None or (type(v) is str and len(v) <= 4096)
            else _text(obj, "url", False, 4096)
        )
    elif etype == "remove_from_cart":
        ev.product_id = _text(obj, "product_id", True)
        ev.quantity = _quantity(obj)
    elif etype == "checkout_started":
        ev.cart_value = _number(obj, "cart_value")
        ev.currency = _currency(obj)
    elif etype == "search":
        ev.query = _text(obj, "query", False, 1024)
    elif etype == "order_placed":
        ev.order_id = _text(obj, "order_id", True)
        ev.total = _number(obj, "total")
        ev.currency = _currency(obj)
        ev.items = _items(obj)
    elif etype in _ORDER_FOLLOWUPS:
        ev.order_id = _text(obj, "order_id", True)
    elif etype in _ENGAGEMENT_CLICKS:
        ev.campaign_id = _text(obj, "campaign_id")
        ev.action_id = _text(obj, "action_id")
    elif etype == "unsubscribe" or etype == "subscribe":
        channel = _text(obj, "channel", True)
        if channel not in _SUB_CHANNELS:
            raise _Invalid(
                "wrong_value",
                f"field 'channel' must be one of email, sms, push, all; got {channel!r}",
            )
        ev.channel = channel
    elif etype == "review" or etype == "nps":
        ev.score = _score(obj, etype)
    elif etype == "deal_won":
        ev.order_id = _text(obj, "deal_id")
        ev.total = _number(obj, "total")
        ev.currency = _currency(obj)
    return ev


def _bad_type(etype: object, topic: str, allowed: frozenset[str] | None) -> None:
    if etype is None:
        raise _Invalid("missing_field", "missing required field 'type'")
    if type(etype) is not str:
        raise _Invalid("wrong_type", f"field 'type' must be a string, got {_kind(etype)}")
    raise _Invalid(
        "unknown_type",
        f"unknown event type {etype!r} for topic '{topic}' (expected one of: "
        f"{', '.join(sorted(allowed or ()))})",
    )


def _oversized(raw: bytes) -> Rejection:
    return Rejection(
        f"record of {len(raw)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit", "oversized"
    )


def _parse_object(raw: bytes) -> dict[str, Any] | Rejection:
    """One JSON object within the size limit, or why not."""
    if len(raw) > MAX_RECORD_BYTES:
        return _oversized(raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"malformed JSON: {exc}", "malformed")
    if type(obj) is not dict:
        return Rejection(f"expected a JSON object, got {_kind(obj)}", "malformed")
    return obj


def decode_event(raw: bytes | None, topic: str, key: bytes | None = None) -> Event | Rejection:
    """Parse one input record of ``topic``; never raises for bad input."""
    if raw is None:
        return Rejection("record has no value (null)", "malformed")
    obj = _parse_object(raw)
    if isinstance(obj, Rejection):
        return obj
    try:
        key_text = key.decode() if key is not None else None
    except UnicodeDecodeError:
        return Rejection("record key is not valid UTF-8", "key_mismatch")
    try:
        return _build(obj, topic, key_text)
    except _Invalid as bad:
        return Rejection(bad.error, bad.reason)


class ProfileLine(NamedTuple):
    """A profile record of a JSON-lines file: ``{"topic": "profiles", "customer_id", "value"}``."""

    at: int  # when it applies: its ``updated_at``, or 0 (before every event) without one
    customer_id: str
    profile: Profile | None  # None forgets the customer's personal data


def decode_line(line: bytes) -> Event | ProfileLine | Rejection:
    """One line of a JSON-lines file: an event, a profile record, or why not; never raises.

    The file form of :func:`decode_event` (``kairos replay`` and ``kairos publish``
    read files with it): an event's topic follows from its ``type``, a line whose
    ``topic`` is ``profiles`` is a profile record, and every check and its wording
    is the one records from Kafka get. Each line is parsed once.
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"malformed JSON: {exc}", "malformed")
    if type(obj) is not dict:
        return Rejection("expected a JSON object", "malformed")
    if obj.get("topic") == "profiles":
        return _profile_line(obj)
    etype = obj.get("type")
    topic = TOPIC_OF.get(etype) if type(etype) is str else None
    if topic is None:
        if etype is None:
            return Rejection("missing required field 'type'", "missing_field")
        return Rejection(
            f"unknown event type {etype!r} (expected one of: {', '.join(sorted(TOPIC_OF))})",
            "unknown_type",
        )
    if len(line) > MAX_RECORD_BYTES:
        return _oversized(line)
    try:
        return _build(obj, topic, None)
    except _Invalid as bad:
        return Rejection(bad.error, bad.reason)


def _profile_line(obj: dict[str, Any]) -> ProfileLine | Rejection:
    customer_id = obj.get("customer_id")
    if type(customer_id) is not str or not customer_id:
        return Rejection("profile record needs a 'customer_id' string", "missing_field")
    value = obj.get("value")
    parsed = decode_profile(None if value is None else orjson.dumps(value), customer_id.encode())
    if isinstance(parsed, Rejection):
        return parsed
    profile = parsed[1]
    return ProfileLine(profile.updated_at if profile is not None else 0, customer_id, profile)


def decode_profile(raw: bytes | None, key: bytes | None) -> tuple[str, Profile | None] | Rejection:
    """Parse a ``profiles`` record: (customer_id, Profile) or (customer_id, None) to forget."""
    if key is None:
        return Rejection("profile record has no key (customer_id)", "missing_field")
    try:
        customer_id = key.decode()
    except UnicodeDecodeError:
        return Rejection("record key is not valid UTF-8", "key_mismatch")
    if raw is None or raw.strip() == b"null":
        return customer_id, None
    obj = _parse_object(raw)
    if isinstance(obj, Rejection):
        return obj
    try:
        return customer_id, profile_from_dict(obj)
    except _Invalid as bad:
        return Rejection(bad.error, bad.reason)


def profile_from_dict(obj: dict[str, Any]) -> Profile:
    consent = obj.get("consent")
    consent = {} if consent is None else consent
    if type(consent) is not dict or any(type(v) is not bool for v in consent.values()):
        raise _Invalid("wrong_type", "field 'consent' must be an object of booleans")
    attributes = obj.get("attributes")
    attributes = {} if attributes is None else attributes
    if type(attributes) is not dict:
        raise _Invalid(
            "wrong_type", f"field 'attributes' must be an object, got {_kind(attributes)}"
        )
    updated = obj.get("updated_at")
    return Profile(
        email=_text(obj, "email", False, 320),
        phone=_text(obj, "phone"),
        push_token=_text(obj, "push_token", False, 4096),
        timezone=_text(obj, "timezone"),
        locale=_text(obj, "locale"),
        consent=consent,
        attributes=attributes,
        updated_at=parse_ts(updated, "updated_at") if updated is not None else 0,
    )
