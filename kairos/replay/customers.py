"""Who is where at the end of a replay: audience sizes, RFM segments, one line per customer.

Computed once, from the final states at the replay's clock, and only when asked for
(``--customers-out``) or when the config defines audiences: a replay without them does
no work here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core import scores, segments
from core.audience_expr import all_tags
from core.config import Config
from core.model import CustomerState


@dataclass(slots=True)
class Population:
    audiences: Counter[str] = field(default_factory=Counter)  # audience -> customers in it
    rfm: Counter[str] = field(default_factory=Counter)  # RFM segment -> customers
    customers: list[dict[str, Any]] | None = None  # one summary per customer, when asked


def population(
    states: Iterable[CustomerState], now: int, cfg: Config, keep_customers: bool
) -> Population:
    out = Population(customers=[] if keep_customers else None)
    if not cfg.audiences and not keep_customers:
        return out
    compiled = segments.bound(cfg)
    audiences = list(compiled.audiences.items())
    rfm_cfg, clv_cfg, lead_cfg = cfg.scores.rfm, cfg.scores.clv, cfg.scores.lead
    for name, _ in audiences:
        out.audiences[name] = 0  # every audience shown, empty ones too
    for state in states:
        inside = [name for name, holds in audiences if holds(state, now)]
        out.audiences.update(inside)
        rfm = scores.rfm(state, now, rfm_cfg)
        out.rfm[rfm[3] if rfm else "prospect"] += 1
        if out.customers is not None:
            lead = compiled.lead_score(state, now)
            rfm_obj: dict[str, Any] = (
                {"r": rfm[0], "f": rfm[1], "m": rfm[2], "segment": rfm[3]}
                if rfm
                else {"r": None, "f": None, "m": None, "segment": "prospect"}
            )
            out.customers.append(
                {
                    "customer_id": state.customer_id,
                    "stage": state.stage,
                    "audiences": inside,
                    "tags": list(all_tags(state)),
                    "scores": {
                        "rfm": rfm_obj,
                        "clv": scores.clv(state, now, clv_cfg),
                        "lead": lead,
                        **scores.lead_summary(state, lead, lead_cfg.requalify_below),
                    },
                }
            )
    return out


def merge(into: Population, part: Population) -> None:
    into.audiences.update(part.audiences)
    into.rfm.update(part.rfm)
    if into.customers is not None and part.customers is not None:
        into.customers.extend(part.customers)
