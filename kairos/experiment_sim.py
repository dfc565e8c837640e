"""Traffic with a known effect per variant: customers who answer the messages they get.

``kairos simulate`` draws traffic that does not know what the engine decides, so no
message can change what a customer does. Here the engine runs in the loop: every
customer abandons a cart; the core decides (``abandoned_cart`` under the given
config, with its holdout and variants); a customer then orders within the hour with
probability ``base`` when held out, or ``base + lift[variant]`` when sent the
variant's message. Written out as an event file, a replay (or a live run) makes the
same decisions again, so the report should find each variant's ``lift`` within its
interval. Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from typing import Any

from core.attribution import GROUP_OF
from core.config import Config
from core.driver import Driver, Outputs
from core.durations import HOUR, MINUTE
from core.model import Event

TRIGGER = "abandoned_cart"
START = 1_767_258_000_000  # 2026-01-01T09:00:00Z
GAP = 7_000  # ms between two customers' carts


def experiment_events(
    cfg: Config,
    customers: int,
    lift: dict[str, float],
    base: float = 0.05,
    seed: int = 16,
    start: int = START,
) -> list[dict[str, Any]]:
    """Carts of ``customers`` customers and the orders the messages bring, in time order."""
    rng = random.Random(seed)
    only = {name: replace(t, enabled=name == TRIGGER) for name, t in cfg.triggers.items()}
    out = Outputs()
    driver = Driver(replace(cfg, triggers=only), out)
    events: list[dict[str, Any]] = []
    for i in range(customers):
        price = round(rng.uniform(10, 90), 2)
        customer, ts = f"exp-{i:06d}", start + i * GAP
        record: dict[str, Any] = {"event_id": f"cart-{i}", "type": "add_to_cart"}
        record |= {"customer_id": customer, "ts": ts}
        record |= {"product_id": f"sku-{rng.randrange(50):03d}", "price": price, "quantity": 1}
        events.append(record)
        driver.send(
            Event(
                f"cart-{i}",
                "add_to_cart",
                customer,
                ts,
                product_id=record["product_id"],
                price=price,
                quantity=1,
            )
        )
    driver.advance(start + customers * GAP + 30 * 24 * HOUR)
    for d in out.decisions:
        group = GROUP_OF.get(d.status)
        if group is None:
            continue
        p = base + (lift.get(d.variant or "", 0.0) if group == "sent" else 0.0)
        if rng.random() < p:
            events.append(
                {
                    "event_id": f"order-{d.customer_id}",
                    "type": "order_placed",
                    "customer_id": d.customer_id,
                    "ts": d.decided_at + rng.randrange(5 * MINUTE, HOUR),
                    "order_id": f"o-{d.customer_id}",
                    "total": round(rng.uniform(20, 120), 2),
                }
            )
    events.sort(key=lambda e: e["ts"])
    return events


def lifts(text: str) -> dict[str, float]:
    """``--experiment A=0.02,B=0.08``: each variant's lift of the conversion rate."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            lift = float(value)
        except ValueError:
            lift = float("nan")
        if not sep or not name.strip() or not -1 < lift < 1:
            raise argparse.ArgumentTypeError(
                f"expected variant=lift pairs like A=0.02,B=0.08, got {part!r}"
            )
        out[name.strip()] = lift
    return out


def check(cfg: Config, lift: dict[str, float], base: float) -> str:
    """Why these lifts cannot be simulated under ``cfg``, or ``""``."""
    variants = cfg.triggers[TRIGGER].variants
    unknown = sorted(set(lift) - set(variants))
    if unknown:
        known = ", ".join(variants) or "none: give --config with triggers.abandoned_cart.variants"
        return (
            f"--experiment names variants abandoned_cart does not have: {unknown} (it has {known})"
        )
    worst = [name for name, value in lift.items() if not 0 <= base + value <= 1]
    if worst:
        return f"--base-rate plus the lift of {worst[0]} is not a probability from 0 to 1"
    return ""
