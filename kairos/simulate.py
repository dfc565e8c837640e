"""``kairos simulate``: realistic customer traffic, live to Kafka or to a JSON-lines file.

Customers browse in sessions (page and product views, searches), put items in
carts, start checkouts, buy or abandon, open messages, answer NPS surveys,
sometimes unsubscribe, and some go quiet for good. With ``b2b`` (a share of the
customers, 0 by default so the default traffic stays what benchmarks measured), some
are business visitors instead: pricing pages, whitepapers, demo requests, nurture
email clicks, a company profile (size, industry, region) and now and then a
``deal_won`` from the CRM, the traffic lead scoring works on. Everything is drawn from a
seeded ``random.Random``: the same seed gives the same traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.durations import DAY
from core.model import TOPIC_TYPES
from kairos import inputs
from kairos.arguments import count, duration, number
from kairos.errors import UserError
from kairos.inputs import writable_file

TOPIC_OF = {etype: topic for topic, types in TOPIC_TYPES.items() for etype in types}
CATEGORIES = ("shoes", "shirts", "bags", "watches", "books", "games", "kitchen", "garden")
FAMILY = 5  # products viewed together
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Sydney")
B2B_PAGES = ("/", "/product", "/customers", "/blog", "/integrations")
COMPANY_SIZES = (5, 20, 50, 120, 300, 1000, 5000)
INDUSTRIES = ("saas", "fintech", "retail", "manufacturing", "health")
REGIONS = ("emea", "amer", "apac")
Record = tuple[str, str, dict[str, Any] | None]  # (topic, key, value)
FILE_START = 1_767_225_600_000  # 2026-01-01T00:00:00Z: files are reproducible


@dataclass(slots=True)
class Shopper:
    customer_id: str
    quiet: bool  # a customer who stops coming back after a few sessions
    sessions: int = 0
    orders: list[str] = field(default_factory=list)
    b2b: bool = False  # a business visitor (pricing, demo requests), not a shopper


class Traffic:
    """Interleaves many customers' sessions into one stream of contract events."""

    def __init__(
        self, customers: int, seed: int = 7, concurrency: int = 200, b2b: float = 0.0
    ) -> None:
        self.rng = random.Random(seed)
        self.shoppers = [
            Shopper(f"cust-{i:07d}", quiet=self.rng.random() < 0.2) for i in range(customers)
        ]
        if b2b > 0:  # its own draws: the shoppers' traffic is unchanged without b2b
            pick = random.Random(seed * 7919 + 1)
            for shopper in self.shoppers:
                shopper.b2b = pick.random() < b2b
        self._active: list[Iterator[tuple[str, dict[str, Any]]]] = []
        self._concurrency = max(1, min(concurrency, customers))
        self._seq = 0
        self._profiled: set[str] = set()
        self._b2b_ids = {s.customer_id for s in self.shoppers if s.b2b}
        self.products = [
            (f"sku-{i:04d}", self.rng.choice(CATEGORIES), round(self.rng.uniform(5, 250), 2))
            for i in range(500)
        ]
        # Families of FAMILY products in one category, viewed together: co-viewing patterns.
        self.products = [
            (sku, self.products[i - i % FAMILY][1], price)
            for i, (sku, _, price) in enumerate(self.products)
        ]

    def next_records(self, ts: int) -> list[Record]:
        """The next event (plus the customer's profile on first sight), stamped ``ts``."""
        rng = self.rng
        while len(self._active) < self._concurrency:
            self._active.append(self._session(rng.choice(self.shoppers)))
        i = rng.randrange(len(self._active))
        try:
            customer_id, event = next(self._active[i])
        except StopIteration:
            self._active[i] = self._active[-1]
            self._active.pop()
            return []
        self._seq += 1
        event["event_id"] = f"ev-{self._seq:09d}-{rng.getrandbits(24):06x}"
        event["customer_id"] = customer_id
        event["ts"] = ts
        out: list[Record] = []
        if customer_id not in self._profiled:
            self._profiled.add(customer_id)
            attributes = self._attributes(customer_id)
            if self._b2b_ids and customer_id in self._b2b_ids:
                attributes.update(
                    company=f"Company {customer_id[-4:]}",
                    company_size=rng.choice(COMPANY_SIZES),
                    industry=rng.choice(INDUSTRIES),
                    region=rng.choice(REGIONS),
                )
            out.append(
                (
                    "profiles",
                    customer_id,
                    {
                        "customer_id": customer_id,
                        "email": f"{customer_id}@example.com",
                        "push_token": f"tok-{customer_id}",
                        "timezone": rng.choice(TIMEZONES),
                        "locale": "en",
                        "consent": {"email": rng.random() < 0.9, "push": True, "sms": False},
                        "attributes": attributes,
                        "updated_at": ts,
                    },
                )
            )
        out.append((TOPIC_OF[event["type"]], customer_id, event))
        return out

    def _attributes(self, customer_id: str) -> dict[str, Any]:
        """First name and, for 80% of customers, a birth date (29 Feb among them)."""
        attributes: dict[str, Any] = {"first_name": f"Ann{customer_id[-3:]}"}
        # A separate generator: the birth dates leave the event stream as it was.
        rng = random.Random(f"birth-{customer_id}")
        if rng.random() < 0.8:
            year = rng.randint(1950, 2006)
            if rng.random() < 0.01:
                attributes["birth_date"] = f"{year - year % 4}-02-29"
            else:
                day = rng.randrange(365)
                month, mday = _MONTH_DAY[day]
                attributes["birth_date"] = f"{year}-{month:02d}-{mday:02d}"
        return attributes

    def _session(self, shopper: Shopper) -> Iterator[tuple[str, dict[str, Any]]]:
        if shopper.b2b:
            return self._b2b_session(shopper)
        return self._shopping(shopper)

    def _b2b_session(self, shopper: Shopper) -> Iterator[tuple[str, dict[str, Any]]]:
        """A business visitor's visit: the pages that say how interested they are."""
        rng, cid = self.rng, shopper.customer_id
        shopper.sessions += 1
        if shopper.quiet and shopper.sessions > 3:
            return
        if rng.random() < 0.3:
            yield cid, {"type": "email_click", "campaign_id": "nurture"}
        yield cid, {"type": "session_start"}
        for _ in range(rng.randint(1, 3)):
            yield cid, {"type": "page_view", "url": rng.choice(B2B_PAGES)}
        if rng.random() < 0.45:
            yield cid, {"type": "page_view", "url": "/pricing"}
        if rng.random() < 0.15:
            yield cid, {"type": "page_view", "url": "/whitepaper/roi"}
        if rng.random() < 0.06:
            yield cid, {"type": "page_view", "url": "/demo/request"}
        if shopper.sessions > 2 and rng.random() < 0.04:  # the CRM reports a deal won
            deal_id = f"deal-{cid[-7:]}-{shopper.sessions}"
            total = round(rng.uniform(2_000, 20_000), 2)
            yield cid, {"type": "deal_won", "deal_id": deal_id, "total": total, "currency": "EUR"}

    def _shopping(self, shopper: Shopper) -> Iterator[tuple[str, dict[str, Any]]]:
        rng, cid = self.rng, shopper.customer_id
        shopper.sessions += 1
        if shopper.quiet and shopper.sessions > 3:
            return
        if rng.random() < 0.3:
            yield cid, {"type": rng.choice(("email_open", "push_open")), "campaign_id": "weekly"}
        yield cid, {"type": rng.choice(("session_start", "app_open"))}
        for _ in range(rng.randint(1, 3)):
            yield cid, {"type": "page_view", "url": f"/c/{rng.choice(CATEGORIES)}"}
        if rng.random() < 0.3:
            yield cid, {"type": "search", "query": rng.choice(CATEGORIES)}
        favourite = rng.choice(self.products)
        cart: list[tuple[str, str, float]] = []
        for _ in range(rng.randint(1, 6)):
            draw = rng.random()
            if draw < 0.4:
                product = favourite
            elif draw < 0.75:  # one of its family
                first = self.products.index(favourite) // FAMILY * FAMILY
                product = self.products[first + rng.randrange(FAMILY)]
            else:
                product = rng.choice(self.products)
            yield cid, _view(product)
            if rng.random() < 0.18:
                cart.append(product)
                yield (
                    cid,
                    {
                        "type": "add_to_cart",
                        "product_id": product[0],
                        "price": product[2],
                        "quantity": rng.randint(1, 2),
                        "currency": "EUR",
                    },
                )
        if cart and rng.random() < 0.1:
            yield cid, {"type": "remove_from_cart", "product_id": cart.pop()[0]}
        if cart and rng.random() < 0.55:
            value = round(sum(p[2] for p in cart), 2)
            checkouts = 2 if rng.random() < 0.15 else 1
            for _ in range(checkouts):
                yield cid, {"type": "checkout_started", "cart_value": value, "currency": "EUR"}
            if rng.random() < 0.5:
                order_id = f"ord-{cid[-7:]}-{shopper.sessions}"
                shopper.orders.append(order_id)
                yield (
                    cid,
                    {
                        "type": "order_placed",
                        "order_id": order_id,
                        "total": value,
                        "currency": "EUR",
                        "items": [{"product_id": p[0], "quantity": 1, "price": p[2]} for p in cart],
                    },
                )
                follow = "order_cancelled" if rng.random() < 0.04 else "order_paid"
                yield cid, {"type": follow, "order_id": order_id}
        if rng.random() < 0.03:
            yield cid, {"type": "nps", "score": rng.randint(0, 10)}
        if shopper.orders and rng.random() < 0.05:
            yield cid, {"type": "review", "score": rng.randint(1, 5)}
        if rng.random() < 0.004:
            yield cid, {"type": "unsubscribe", "channel": rng.choice(("email", "push", "all"))}


_MONTH_DAY = [
    (month, day)
    for month, days in enumerate((31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1)
    for day in range(1, days + 1)
]


def _view(product: tuple[str, str, float]) -> dict[str, Any]:
    return {
        "type": "product_view",
        "product_id": product[0],
        "category": product[1],
        "price": product[2],
        "currency": "EUR",
    }


def generate(
    customers: int, events: int, seed: int, start_ms: int, span_ms: int, b2b: float = 0.0
) -> Iterator[Record]:
    """``events`` records on a virtual clock from ``start_ms`` over ``span_ms`` (files, bench)."""
    traffic = Traffic(customers, seed, b2b=b2b)
    step = span_ms / max(events, 1)
    produced = 0
    while produced < events:
        for record in traffic.next_records(start_ms + int(produced * step)):
            if record[0] != "profiles":
                produced += 1
            yield record


async def publish_live(
    bootstrap: str,
    customers: int,
    rate: float,
    duration: float,
    seed: int = 7,
    bad_rate: float = 0.0,
    stop: asyncio.Event | None = None,
    b2b: float = 0.0,
) -> int:
    """Publish at ``rate`` events/s for ``duration`` s (or until ``stop``); returns the count."""
    from aiokafka import AIOKafkaProducer

    from stream.security import kafka_client_kwargs

    traffic = Traffic(customers, seed, b2b=b2b)
    rng = random.Random(seed + 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **kafka_client_kwargs())
    sent, started = 0, time.monotonic()
    try:
        await producer.start()
        while time.monotonic() - started < duration and not (stop and stop.is_set()):
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                now = time.time_ns() // 1_000_000
                for topic, key, value in traffic.next_records(now):
                    raw = orjson.dumps(value)
                    if topic != "profiles" and bad_rate and rng.random() < bad_rate:
                        raw = raw[: len(raw) // 2]  # a truncated record: dead-letter material
                    await producer.send(topic, raw, key=key.encode())
                    if topic != "profiles":
                        sent += 1
            await asyncio.sleep(0.01)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customers",
        type=count(1, 10_000_000),
        help="distinct customers (default: 1000; long-history: one per 50 events)",
    )
    parser.add_argument(
        "--rate", type=number(0, 1e6, above=True), default=200.0, help="events per second (live)"
    )
    parser.add_argument(
        "--duration", type=number(0, 1e7, above=True), default=60.0, help="seconds to run (live)"
    )
    parser.add_argument("--seed", type=int, default=7, help="same seed, same traffic")
    parser.add_argument(
        "--bad-rate", type=number(0, 1), default=0.0, help="share of truncated records (0 to 1)"
    )
    parser.add_argument(
        "--b2b",
        type=number(0, 1),
        default=0.0,
        help="share of customers who are business visitors (pricing, demo requests; 0 to 1)",
    )
    parser.add_argument("--bootstrap", help="Kafka host:port (default: from $BROKER_URL)")
    parser.add_argument("--out", help="write JSON lines here instead of publishing")
    parser.add_argument(
        "--events", type=count(1, 10**9), default=100_000, help="events to write (--out)"
    )
    parser.add_argument(
        "--span",
        type=duration,
        help="event-time span of the file (--out): 7d, 12h (default: 7d; long-history: 182d)",
    )
    parser.add_argument(
        "--profile",
        choices=("default", "long-history"),
        default="default",
        help="default: short-lived shoppers; long-history (--out only): ~50 events per "
        "customer over months, a third of timestamps ISO-8601 (kairos.simulate_history)",
    )
    from kairos.experiment_sim import lifts

    parser.add_argument(
        "--experiment",
        type=lifts,
        help="with --out: abandoned carts whose customers answer the messages, lifting the "
        "conversion rate per variant, e.g. short=0.02,late=0.08 (kairos/experiment_sim.py)",
    )
    parser.add_argument(
        "--base-rate",
        type=number(0, 1),
        default=0.05,
        help="with --experiment: conversion rate without a message",
    )
    parser.add_argument("--config", help="with --experiment: the config whose variants it tests")


def run(args: argparse.Namespace) -> int:
    if args.profile == "long-history":
        return _long_history(args)
    if args.customers is None:
        args.customers = 1000
    if args.span is None:
        args.span = 7 * DAY
    if args.experiment:
        return _experiment(args)
    if args.out:
        writable_file(args.out, "event file")
        with open(args.out, "wb") as out:
            for topic, key, value in generate(
                args.customers, args.events, args.seed, FILE_START, args.span, args.b2b
            ):
                line = {"topic": topic, "customer_id": key, "value": value}
                out.write(orjson.dumps(line if topic == "profiles" else value) + b"\n")
        print(f"wrote {args.events} events for {args.customers} customers to {args.out}")
        return 0
    broker = inputs.broker(args.bootstrap)
    with inputs.reaching("Kafka broker", broker):
        sent = asyncio.run(
            publish_live(
                broker.value,
                args.customers,
                args.rate,
                args.duration,
                args.seed,
                args.bad_rate,
                b2b=args.b2b,
            )
        )
    print(f"published {sent} events")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    """``--experiment``: the closed-loop traffic of ``kairos.experiment_sim``, to a file."""
    from core.config import Config
    from kairos.errors import UserError
    from kairos.experiment_sim import check, experiment_events

    if not args.out:
        raise UserError("--experiment writes a file: give --out FILE")
    writable_file(args.out, "event file")
    cfg = inputs.campaign_config(args.config) if args.config else Config()
    problem = check(cfg, args.experiment, args.base_rate)
    if problem:
        raise UserError(problem)
    events = experiment_events(cfg, args.customers, args.experiment, args.base_rate, args.seed)
    with open(args.out, "wb") as out:
        out.writelines(orjson.dumps(e) + b"\n" for e in events)
    print(f"wrote {len(events)} events for {args.customers} customers to {args.out}")
    return 0


def _long_history(args: argparse.Namespace) -> int:
    """``--profile long-history``: a file only (its times are months of history, not now)."""
    from kairos import simulate_history

    if not args.out:
        raise UserError("--profile long-history writes a file: give --out PATH")
    writable_file(args.out, "event file")
    customers = args.customers or simulate_history.customers_for(args.events)
    span = args.span or 182 * DAY
    lines = simulate_history.lines(args.events, customers, args.seed, FILE_START, span)
    with open(args.out, "wb") as out:
        out.write(b"\n".join(lines) + b"\n")
    print(f"wrote {args.events} events (long-history) for ~{customers} customers to {args.out}")
    return 0
