"""``kairos simulate --profile long-history``: months of history per customer, for files.

The default profile's shoppers come for a few sessions within days. Real event logs
look different, and cost the engine more per event: about 50 events per customer
spread over the whole span (six months by default) in sessions of 5-20 events, most
customers coming back several times (so carts, orders, at-risk and churn deadlines
pile up per customer), and a third of the timestamps written as ISO-8601 strings
with UTC offsets, as exports from other systems write them. Lines come out in time
order, each customer's profile first. Seeded: the same seed gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from core.durations import DAY, HOUR
from kairos.simulate import CATEGORIES, TIMEZONES

EVENTS_PER_CUSTOMER = 50  # on average; customers = events // this unless given
SESSION_EVENTS = (5, 20)
ISO_SHARE = 1 / 3
RETURNING = 0.85  # share of customers whose target spans more than one session
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Offsets seen in exports (a few half-hour zones too); "Z" is written for UTC.
_OFFSETS = tuple(timezone(timedelta(minutes=m)) for m in (0, 0, 60, 120, -300, -480, 330, 540, 600))
_DUPLICATES = 0.003  # lines sent twice (same event_id), as at-least-once exports have


def customers_for(events: int) -> int:
    return max(1, events // EVENTS_PER_CUSTOMER)


def lines(events: int, customers: int, seed: int, start_ms: int, span_ms: int) -> list[bytes]:
    """``events`` JSON lines (plus a profile line per customer), in time order."""
    timed = [
        (at, orjson.dumps(obj)) for at, obj in records(events, customers, seed, start_ms, span_ms)
    ]
    timed.sort(key=_first)  # stable: a profile stays before its customer's first event
    return [line for _, line in timed]


def _first(item: tuple[int, bytes]) -> int:
    return item[0]


def records(
    events: int, customers: int, seed: int, start_ms: int, span_ms: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(time, line object)`` per line, customer by customer; ``events`` events in all."""
    rng = random.Random(seed)
    products = [
        (f"sku-{i:04d}", rng.choice(CATEGORIES), round(rng.uniform(5, 250), 2)) for i in range(800)
    ]
    by_category = {c: [p for p in products if p[1] == c] or products for c in CATEGORIES}
    mean = events / customers
    seq = 0
    i = 0
    while seq < events:
        cid = f"cust-{i:07d}"
        i += 1
        # Each customer's own amount of history, a few events to ~2x the mean; scaled so
        # that with the one-session customers the mean is ``mean``.
        target = max(SESSION_EVENTS[0], round(rng.uniform(0.1, 2.0) * mean))
        if rng.random() >= RETURNING:
            target = min(target, rng.randint(*SESSION_EVENTS))
        first = start_ms + rng.randrange(max(1, span_ms // 3))
        yield first, _profile(rng, cid, first)
        for at, obj in _history(rng, cid, target, products, by_category, first, start_ms + span_ms):
            seq += 1
            obj["event_id"] = f"ev-{seq:010d}"
            obj["ts"] = _iso(rng, at) if rng.random() < ISO_SHARE else at
            yield at, obj
            if rng.random() < _DUPLICATES and seq < events:  # sent twice: the same line
                seq += 1
                yield at, obj
            if seq >= events:
                return


def _profile(rng: random.Random, cid: str, at: int) -> dict[str, Any]:
    value = {
        "customer_id": cid,
        "email": f"{cid}@example.com",
        "push_token": f"tok-{cid}",
        "timezone": rng.choice(TIMEZONES),
        "locale": "en",
        "consent": {"email": rng.random() < 0.9, "push": rng.random() < 0.7, "sms": False},
        "attributes": {"first_name": f"Ann{cid[-3:]}"},
        "updated_at": at,
    }
    return {"topic": "profiles", "customer_id": cid, "value": value}


def _iso(rng: random.Random, ms: int) -> str:
    """``ms`` as RFC 3339 in one of the offsets (milliseconds kept exactly)."""
    moment = (_EPOCH + timedelta(milliseconds=ms)).astimezone(rng.choice(_OFFSETS))
    text = moment.isoformat(timespec="milliseconds")
    if rng.random() < 0.1:
        text = text.replace("T", " ")  # the contract's other separator
    return text[:-6] + "Z" if text.endswith("+00:00") and rng.random() < 0.5 else text


def _history(
    rng: random.Random,
    cid: str,
    target: int,
    products: list[tuple[str, str, float]],
    by_category: dict[str, list[tuple[str, str, float]]],
    first: int,
    end: int,
) -> list[tuple[int, dict[str, Any]]]:
    """About ``target`` events of one customer from ``first`` to before ``end``."""
    sizes: list[int] = []
    while sum(sizes) < target:
        sizes.append(rng.randint(*SESSION_EVENTS))
    sizes[-1] -= sum(sizes) - target  # the last session ends where the history does
    if sizes[-1] < 1:
        sizes.pop()
    # Session starts spread over the customer's months (the first one at ``first``).
    later = first + DAY  # returns: from the next day to a few hours before the end
    starts = sorted(later + rng.randrange(max(1, end - later - 3 * HOUR)) for _ in sizes[1:])
    out: list[tuple[int, dict[str, Any]]] = []
    favourites = by_category[rng.choice(CATEGORIES)]
    orders = 0
    for n, (size, at) in enumerate(zip(sizes, [first, *starts], strict=True)):
        session = f"s-{cid[-7:]}-{n}"
        cart: list[tuple[str, str, float]] = []
        made = 0
        while made < size:
            at += rng.randrange(3_000, 120_000)
            made += 1
            ev = _event(rng, made, size, products, favourites, cart)
            if ev["type"] == "order_placed":
                orders += 1
                ev["order_id"] = f"ord-{cid[-7:]}-{orders}"
            ev["customer_id"] = cid
            ev["session_id"] = session
            out.append((at, ev))
            if ev["type"] == "order_placed":  # paid (or cancelled) minutes later
                made += 1
                follow = "order_cancelled" if rng.random() < 0.04 else "order_paid"
                out.append(
                    (
                        at + rng.randrange(1_000, 300_000),
                        {"type": follow, "order_id": ev["order_id"], "customer_id": cid},
                    )
                )
    return out


def _event(
    rng: random.Random,
    made: int,
    size: int,
    products: list[tuple[str, str, float]],
    favourites: list[tuple[str, str, float]],
    cart: list[tuple[str, str, float]],
) -> dict[str, Any]:
    """The ``made``-th event of a session of ``size``: opens, browses, maybe buys."""
    if made == 1:
        return {"type": rng.choice(("session_start", "app_open"))}
    if made == size and cart and rng.random() < 0.45:  # a session that ends in an order
        value = round(sum(p[2] for p in cart), 2)
        items = [{"product_id": p[0], "quantity": 1, "price": p[2]} for p in cart]
        cart.clear()
        return {"type": "order_placed", "total": value, "currency": "EUR", "items": items}
    roll = rng.random()
    if cart and roll < 0.08:
        value = round(sum(p[2] for p in cart), 2)
        return {"type": "checkout_started", "cart_value": value, "currency": "EUR"}
    if roll < 0.55:
        product = rng.choice(favourites) if rng.random() < 0.5 else rng.choice(products)
        return {
            "type": "product_view",
            "product_id": product[0],
            "category": product[1],
            "price": product[2],
            "currency": "EUR",
        }
    if roll < 0.67:
        product = rng.choice(products)
        cart.append(product)
        return {
            "type": "add_to_cart",
            "product_id": product[0],
            "price": product[2],
            "quantity": 1,
            "currency": "EUR",
        }
    if roll < 0.69 and cart:
        return {"type": "remove_from_cart", "product_id": cart.pop()[0]}
    if roll < 0.85:
        return {"type": "page_view", "url": f"/c/{rng.choice(CATEGORIES)}"}
    if roll < 0.92:
        return {"type": "search", "query": rng.choice(CATEGORIES)}
    if roll < 0.985:
        return {
            "type": rng.choice(("email_open", "email_click", "push_open")),
            "campaign_id": "weekly",
        }
    if roll < 0.993:
        return {"type": "nps", "score": rng.randint(0, 10)}
    if roll < 0.998:
        return {"type": "review", "score": rng.randint(1, 5)}
    return {"type": "unsubscribe", "channel": rng.choice(("email", "push", "all"))}
