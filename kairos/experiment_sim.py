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
