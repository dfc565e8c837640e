"""Scripted, deterministic traffic: N customers' short journeys, as Kafka records and JSON lines.

Every customer's journey lasts under 3 s of event time and is one of:

* **abandon** (40%): views, a cart (sometimes a checkout), no order: ``abandoned_cart``
  fires ``delay`` after the last cart change, and a reminder after that;
* **convert** (35%): views, a cart, a checkout, an order and its payment: the
  first-purchase ``welcome`` at once, ``post_purchase`` ``delay`` after the payment;
* **browse** (25%): two or three views of one product: ``browse_abandonment`` after its
  delay, ``limited_time_offer`` when there are three;

and starts with a ``session_start`` (the first-activity ``welcome``), on three topics
(engagement, clickstream, orders) so cross-topic ordering matters. A quarter answer an
NPS survey (0-6 is a detractor alert). Some events are published twice (same
``event_id``: dropped as duplicates) and a few are truncated (dead letters). With
``poison=True`` each input topic also gets records a careless consumer would choke on.

The journey ends before any of its deadlines come due (delays of 4 s and more), so no
exit event races a deadline: live and replay must decide the same. Event times are the
wall-clock times the records are published at (``t0`` + offset), so a worker that keeps
up sees the event time and its clock agree, as in production.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

CLICKSTREAM, ORDERS, ENGAGEMENT, PROFILES = "clickstream", "orders", "engagement", "profiles"
INPUT_TOPICS = (CLICKSTREAM, ORDERS, ENGAGEMENT, PROFILES)
JOURNEY_MS = 3_000  # every journey's events fall within this span after its start
_TOPIC_OF = {
    "session_start": ENGAGEMENT,
    "nps": ENGAGEMENT,
    "product_view": CLICKSTREAM,
    "add_to_cart": CLICKSTREAM,
    "checkout_started": CLICKSTREAM,
    "order_placed": ORDERS,
    "order_paid": ORDERS,
}
_PRODUCTS = [(f"sku-{i:03d}", round(5 + i * 1.37, 2)) for i in range(200)]


@dataclass(frozen=True, slots=True)
class Burst:
    """``factor`` times the normal customer rate from ``start_s`` for ``length_s``."""

    start_s: float
    length_s: float
    factor: float = 10.0


@dataclass(frozen=True, slots=True)
class TrafficSpec:
    customers: int
    duration_s: float
    seed: int = 11
    burst: Burst | None = None
    duplicate_share: float = 0.03  # events published a second time
    malformed_share: float = 0.01  # customers with one truncated record
    poison: bool = False  # add the poison records of ``poison_records``


@dataclass(slots=True)
class Record:
    """One record to publish at ``at_ms`` (wall clock), and the line replay reads for it.

    ``line`` is None for a record replay cannot be given (a null value): it is expected
    as a dead letter but not in the replay. ``kind``: event, profile, duplicate,
    malformed or poison.
    """

    at_ms: int
    topic: str
    key: bytes
    value: bytes | None
    line: bytes | None
    kind: str
    event_id: str | None = None


@dataclass(slots=True)
class Plan:
    """The records of one run, in publishing order."""

    spec: TrafficSpec
    t0_ms: int
    records: list[Record] = field(default_factory=list)

    @property
    def end_ms(self) -> int:
        return max((r.at_ms for r in self.records), default=self.t0_ms)

    def count(self, *kinds: str) -> int:
        return sum(1 for r in self.records if r.kind in kinds)

    def write_jsonl(self, path: Path) -> None:
        """The replay input: one line per record replay can read, in the same order."""
        with open(path, "wb") as out:
            for record in self.records:
                if record.line is not None:
                    out.write(record.line + b"\n")


def build(spec: TrafficSpec, t0_ms: int) -> Plan:
    """The records of ``spec`` with times from ``t0_ms``; the same spec gives the same bytes
    apart from the times."""
    rng = random.Random(spec.seed)
    plan = Plan(spec, t0_ms)
    starts = _start_offsets(spec, rng)
    for i, start in enumerate(starts):
        customer = f"c{spec.seed}-{i:05d}"
        plan.records.extend(_journey(customer, t0_ms + start, rng, spec))
    if spec.poison:
        plan.records.extend(poison_records(plan, rng))
    plan.records.sort(key=lambda r: r.at_ms)  # stable: a journey keeps its order on ties
    return plan


def _start_offsets(spec: TrafficSpec, rng: random.Random) -> list[int]:
    """Journey start offsets (ms): evenly spread quantiles of the rate profile."""
    span = max(1.0, spec.duration_s - JOURNEY_MS / 1000)
    # Piecewise-constant density over [0, span]: 1 outside the burst, factor inside.
    edges = [0.0, span]
    weights = [1.0]
    if spec.burst is not None:
        b = spec.burst
        lo, hi = max(0.0, b.start_s), min(span, b.start_s + b.length_s)
        edges, weights = [0.0, lo, hi, span], [1.0, b.factor, 1.0]
    mass = [w * (edges[k + 1] - edges[k]) for k, w in enumerate(weights)]
    cumulative = [sum(mass[: k + 1]) for k in range(len(mass))]
    total = cumulative[-1]
    offsets = []
    for i in range(spec.customers):
        q = (i + rng.random()) / spec.customers * total
        k = min(bisect.bisect_left(cumulative, q), len(mass) - 1)
        before = cumulative[k] - mass[k]
        width = edges[k + 1] - edges[k]
        at = edges[k] + ((q - before) / mass[k] * width if mass[k] else 0.0)
        offsets.append(int(at * 1000))
    return offsets


def _journey(customer: str, start: int, rng: random.Random, spec: TrafficSpec) -> list[Record]:
    key = customer.encode()
    seq = iter(range(1_000))
    out: list[Record] = []

    def emit(offset: int, etype: str, **fields: Any) -> None:
        event_id = f"{customer}-e{next(seq):02d}"
        value = orjson.dumps(
            {"event_id": event_id, "type": etype, "customer_id": customer, "ts": start + offset}
            | fields
        )
        out.append(Record(start + offset, _TOPIC_OF[etype], key, value, value, "event", event_id))

    profile = {
        "customer_id": customer,
        "email": f"{customer}@example.com",
        "timezone": rng.choice(("UTC", "Europe/Berlin", "America/New_York")),
        "locale": "en",
        "consent": {"email": True, "push": True, "sms": False},
        "attributes": {"first_name": f"Ann{customer[-3:]}"},
        "updated_at": start,
    }
    profile_value = orjson.dumps(profile)
    line = orjson.dumps({"topic": PROFILES, "customer_id": customer, "value": profile})
    out.append(Record(start, PROFILES, key, profile_value, line, "profile"))

    emit(0, "session_start")
    favourite = rng.choice(_PRODUCTS)
    kind = rng.choices(("abandon", "convert", "browse"), (40, 35, 25))[0]
    views = rng.randint(2, 3) if kind == "browse" else rng.randint(1, 2)
    t = 150
    for _ in range(views):
        emit(t, "product_view", product_id=favourite[0], category="shoes", price=favourite[1])
        t += rng.randint(100, 300)
    if kind in ("abandon", "convert"):
        quantity = rng.randint(1, 2)
        emit(t, "add_to_cart", product_id=favourite[0], price=favourite[1], quantity=quantity)
        value = round(favourite[1] * quantity, 2)
        t += rng.randint(150, 400)
        if kind == "convert" or rng.random() < 0.3:
            emit(t, "checkout_started", cart_value=value, currency="EUR")
            t += rng.randint(150, 400)
        if kind == "convert":
            order_id = f"o-{customer}"
            item = {"product_id": favourite[0], "quantity": quantity, "price": favourite[1]}
            emit(t, "order_placed", order_id=order_id, total=value, currency="EUR", items=[item])
            t += rng.randint(100, 300)
            emit(t, "order_paid", order_id=order_id)
            t += rng.randint(100, 300)
    if rng.random() < 0.25:
        emit(t, "nps", score=rng.randint(0, 10))
    out.extend(_duplicates(out, rng, spec.duplicate_share))
    if rng.random() < spec.malformed_share:
        out.append(_truncated(rng.choice([r for r in out if r.kind == "event"]), rng))
    return out


def _duplicates(records: list[Record], rng: random.Random, share: float) -> Iterator[Record]:
    """The same bytes again a little later, still within the journey."""
    for r in list(records):
        if r.kind == "event" and rng.random() < share:
            at = min(r.at_ms + rng.randint(50, 400), records[0].at_ms + JOURNEY_MS - 100)
            yield Record(max(at, r.at_ms), r.topic, r.key, r.value, r.line, "duplicate", r.event_id)


def _truncated(r: Record, rng: random.Random) -> Record:
    assert r.value is not None
    cut = r.value[: len(r.value) // 2]
    return Record(r.at_ms + rng.randint(1, 50), r.topic, r.key, cut, cut, "malformed")


def poison_records(plan: Plan, rng: random.Random) -> list[Record]:
    """Records a careless consumer would choke on, on every input topic, spread over the run.

    Each must become one dead letter, and nothing else may change. Keys are real
    customers' ids (the records land on busy partitions) and match any ``customer_id``.
    """
    customers = sorted({r.key for r in plan.records})
    span = int(plan.spec.duration_s * 1000)
    out: list[Record] = []

    def add(
        topic: str, value: bytes | None, line: bytes | None = None, *, replay: bool = True
    ) -> None:
        key = rng.choice(customers)
        at = plan.t0_ms + rng.randint(span // 10, span * 9 // 10)
        body = value.replace(b"@KEY@", key).replace(b"@TS@", str(at).encode()) if value else None
        shown = body if line is None else line.replace(b"@KEY@", key)
        out.append(Record(at, topic, key, body, shown if replay else None, "poison"))

    event = b'{"event_id":"p-@TS@","customer_id":"@KEY@","ts":@TS@,'
    # clickstream: over the 64 KiB limit; not UTF-8; a string where a number belongs
    add(CLICKSTREAM, event + b'"type":"page_view","url":"' + b"x" * 70_000 + b'"}')
    add(CLICKSTREAM, event + b'"type":"page_view","url":"/\xff\xfe\xfd"}')
    add(CLICKSTREAM, event + b'"type":"add_to_cart","product_id":"s","price":"free"}')
    add(CLICKSTREAM, None, replay=False)  # a null value: no line can say that to replay
    # orders: not an object; items not a list; a time in seconds, not milliseconds
    add(ORDERS, b"[1,2,3]")
    add(ORDERS, event + b'"type":"order_placed","order_id":"o","items":"many"}')
    add(
        ORDERS,
        b'{"event_id":"p","customer_id":"@KEY@","ts":1700000000,"type":"order_paid","order_id":"o"}',
    )
    # engagement: an unknown type; a missing customer_id; deeply nested JSON
    add(ENGAGEMENT, event + b'"type":"teleport"}')
    add(ENGAGEMENT, b'{"event_id":"p","type":"nps","score":3,"ts":@TS@}')
    add(
        ENGAGEMENT, event + b'"type":"nps","score":3,"properties":' + b"[" * 400 + b"]" * 400 + b"}"
    )
    # profiles: consent that is not booleans; not an object
    for value in (b'{"consent":{"email":"yes"}}', b'"just a string"'):
        line = b'{"topic":"profiles","customer_id":"@KEY@","value":' + value + b"}"
        add(PROFILES, value, line)
    return out
