"""Every field of the contract has its bound: out of range is a dead letter with a reason.

Each bound has a record just outside it (rejected, with the reason label counted in
``kairos_events_invalid_total`` and the error written to ``dead-letters``) and the
values at its edges (accepted). Event time accepts real history (1990s purchase logs)
and names unit mistakes.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from core.config import Config
from core.model import Event
from kairos import replay
from stream.events import Rejection, decode_event, decode_profile

TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TOPIC = {
    "product_view": "clickstream",
    "add_to_cart": "clickstream",
    "remove_from_cart": "clickstream",
    "checkout_started": "clickstream",
    "page_view": "clickstream",
    "search": "clickstream",
    "order_placed": "orders",
    "order_paid": "orders",
    "email_click": "engagement",
    "nps": "engagement",
    "review": "engagement",
    "subscribe": "engagement",
}


def record(etype: str, **fields: object) -> bytes:
    body: dict[str, object] = {"event_id": "e1", "type": etype, "customer_id": "c1", "ts": TS}
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def decode(raw: bytes) -> Event | Rejection:
    etype = orjson.loads(raw)["type"]
    return decode_event(raw, TOPIC[etype], b"c1")


LONG = "x" * 129
# (bound, record just outside it, reason label, words of the error)
OUTSIDE = [
    ("nps below 0", record("nps", score=-5), "wrong_value", "'score' of nps must be from 0 to 10"),
    ("nps above 10", record("nps", score=11), "wrong_value", "from 0 to 10, got 11"),
    ("nps far above", record("nps", score=99), "wrong_value", "from 0 to 10, got 99"),
    ("nps missing", record("nps"), "missing_field", "missing required field 'score'"),
    ("nps not whole", record("nps", score=6.5), "wrong_value", "must be a whole number"),
    ("nps not a number", record("nps", score="7"), "wrong_type", "'score' must be a number"),
    ("review above 5", record("review", score=6), "wrong_value", "review must be from 0 to 5"),
    ("review below 0", record("review", score=-1), "wrong_value", "from 0 to 5, got -1"),
    ("review missing", record("review"), "missing_field", "missing required field 'score'"),
    (
        "quantity 0",
        record("add_to_cart", product_id="p", quantity=0),
        "wrong_value",
        "'quantity' must be > 0",
    ),
    (
        "quantity huge",
        record("add_to_cart", product_id="p", quantity=10**7),
        "wrong_value",
        "'quantity' must be at most 1,000,000",
    ),
    (
        "quantity on remove",
        record("remove_from_cart", product_id="p", quantity=-2),
        "wrong_value",
        "'quantity' must be > 0",
    ),
    (
        "item quantity",
        record("order_placed", order_id="o", items=[{"product_id": "p", "quantity": 0}]),
        "wrong_value",
        "items[0]: field 'quantity' must be > 0",
    ),
    (
        "price negative",
        record("product_view", product_id="p", price=-0.01),
        "wrong_value",
        "'price' must be >= 0",
    ),
    (
        "price huge",
        record("add_to_cart", product_id="p", price=1e13),
        "wrong_value",
        "'price' must be at most 10^12",
    ),
    ("total huge", record("order_placed", order_id="o", total=2e12), "wrong_value", "'total'"),
    (
        "cart value negative",
        record("checkout_started", cart_value=-1),
        "wrong_value",
        "'cart_value' must be >= 0",
    ),
    (
        "item price",
        record("order_placed", order_id="o", items=[{"product_id": "p", "price": -3}]),
        "wrong_value",
        "items[0]: field 'price' must be >= 0",
    ),
    (
        "currency lower case",
        record("add_to_cart", product_id="p", currency="eur"),
        "wrong_value",
        "'currency' must be an ISO 4217 code",
    ),
    (
        "currency a symbol",
        record("order_placed", order_id="o", currency="€"),
        "wrong_value",
        "ISO 4217",
    ),
    ("currency four letters", record("checkout_started", currency="EURO"), "wrong_value", "ISO"),
    (
        "currency a number",
        record("product_view", product_id="p", currency=978),
        "wrong_type",
        "'currency' must be a string",
    ),
    ("event_id too long", record("page_view", event_id=LONG), "wrong_value", "longer than 128"),
    ("event_id empty", record("page_view", event_id=""), "wrong_value", "must not be empty"),
    (
        "product_id too long",
        record("product_view", product_id=LONG),
        "wrong_value",
        "'product_id' is longer than 128",
    ),
    (
        "category too long",
        record("product_view", product_id="p", category=LONG),
        "wrong_value",
        "'category' is longer than 128",
    ),
    (
        "order_id too long",
        record("order_paid", order_id=LONG),
        "wrong_value",
        "'order_id' is longer than 128",
    ),
    (
        "url too long",
        record("page_view", url="u" * 4097),
        "wrong_value",
        "'url' is longer than 4096",
    ),
    (
        "query too long",
        record("search", query="q" * 1025),
        "wrong_value",
        "'query' is longer than 1024",
    ),
    (
        "campaign_id too long",
        record("email_click", campaign_id=LONG),
        "wrong_value",
        "'campaign_id' is longer than 128",
    ),
    (
        "session_id too long",
        record("page_view", session_id=LONG),
        "wrong_value",
        "'session_id' is longer than 128",
    ),
    (
        "channel unknown",
        record("subscribe", channel="pigeon"),
        "wrong_value",
        "'channel' must be one of email, sms, push, all",
    ),
    (
        "ts in seconds",
        record("page_view", ts=1_767_225_600),
        "bad_ts",
        "looks like seconds: ts is epoch milliseconds (multiply by 1000)",
    ),
    (
        "ts in microseconds",
        record("page_view", ts=1_767_225_600_000_000),
        "bad_ts",
        "looks like microseconds: ts is epoch milliseconds (divide by 1000)",
    ),
    ("ts before 1971", record("page_view", ts=1_000), "bad_ts", "is before 1971"),
    ("ts negative", record("page_view", ts=-1), "bad_ts", "is before 1971"),
    ("ts far future", record("page_view", ts=5_000_000_000_000), "bad_ts", "is after 2100"),
    (
        "ts ISO before 1971",
        record("page_view", ts="1969-07-20T20:17:00Z"),
        "bad_ts",
        "is before 1971",
    ),
    ("ts ISO after 2100", record("page_view", ts="2150-01-01T00:00:00Z"), "bad_ts", "after 2100"),
]


@pytest.mark.parametrize(("bound", "raw", "reason", "words"), OUTSIDE, ids=[c[0] for c in OUTSIDE])
def test_a_value_outside_its_bound_is_a_dead_letter_with_the_reason(
    bound: str, raw: bytes, reason: str, words: str
) -> None:
    result = decode(raw)
    assert isinstance(result, Rejection), bound
    assert result.reason == reason
    assert words in result.error


EDGES = [
    record("nps", score=0),
    record("nps", score=10),
    record("nps", score=7.0),
    record("review", score=0),
    record("review", score=5),
    record("review", score=4.5),
    record("add_to_cart", product_id="p", quantity=1, price=0.0, currency="EUR"),
    record("add_to_cart", product_id="p", quantity=1_000_000, price=1e12, currency="JPY"),
    record("order_placed", order_id="o", total=0, items=[{"product_id": "p", "quantity": 3}]),
    record("checkout_started", cart_value=10**12, currency="USD"),
    record("page_view", event_id="e" * 128, url="u" * 4096),
    record("search", query="q" * 1024),
    record("page_view", ts=31_536_000_000),  # 1971-01-01, the first accepted millisecond
    record("page_view", ts=4_102_444_800_000),  # 2100-01-01
    record("order_placed", order_id="o", ts=852_076_800_000),  # 1997-01-01
    record("order_placed", order_id="o", ts="1997-06-30T10:15:00-07:00"),
]


@pytest.mark.parametrize("raw", EDGES)
def test_values_at_the_edges_of_their_bounds_are_accepted(raw: bytes) -> None:
    assert isinstance(decode(raw), Event), raw


def test_a_profile_updated_at_in_seconds_is_named_as_such() -> None:
    raw = orjson.dumps({"timezone": "UTC", "updated_at": 1_767_225_600})
    result = decode_profile(raw, b"c1")
    assert isinstance(result, Rejection)
    assert "looks like seconds" in result.error


def lines_file(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_out_of_range_nps_scores_never_fire_a_detractor_alert(tmp_path: Path) -> None:
    def nps(i: int, **fields: object) -> bytes:
        return record("nps", event_id=f"n{i}", customer_id=f"c{i}", ts=TS + i, **fields)

    path = lines_file(
        tmp_path,
        [nps(0, score=-5), nps(1, score=11), nps(2, score=99), nps(3), nps(4, score=3)],
    )
    (result,) = replay.run_replay([path], [Config()], keep_decisions=True)
    assert result.invalid == 4
    detractors = [d.customer_id for d in result.decisions or () if d.trigger == "nps_detractor"]
    assert detractors == ["c4"]


def test_a_1990s_purchase_log_replays_like_todays(tmp_path: Path) -> None:
    """Real history: the public purchase logs used for churn and CLV date from 1997-1998."""
    t0 = 852_076_800_000  # 1997-01-01T00:00:00Z
    day = 86_400_000
    lines = []
    for i in range(5):
        at = t0 + i * 40 * day
        lines.append(record("order_placed", event_id=f"o{i}", order_id=f"o{i}", total=20, ts=at))
    lines.append(record("page_view", event_id="late", customer_id="other", ts=t0 + 400 * day))
    (result,) = replay.run_replay([lines_file(tmp_path, lines)], [Config()])
    assert result.invalid == 0 and result.events == 6
    assert sum(result.fired["welcome"].values()) == 2  # first activity, first purchase
    assert result.fired["churn_alert"]  # 200+ quiet days after the last order: at risk
    assert result.stages["churned"] == 1
