"""Money in and out of a trigger: what its messages and discounts cost, what they brought.

Pure arithmetic over an :class:`core.effect.Effect`'s tallies, shared by ``kairos
report`` and ``kairos replay``:

- cost = messages sent x the channel's cost per message (``costs:`` in the config)
  + the discounts of redeemed offer codes (``core.attribution``);
- incremental revenue = (revenue per sent decision - revenue per held-out decision)
  x sent decisions: what the messages brought beyond what would have come anyway
  (needs a holdout);
- ROI = (incremental revenue - cost) / cost; ``roi_attributed`` uses all revenue
  attributed to sent messages instead (an upper bound, for triggers without holdout);
- cost per conversion = cost / conversions of sent decisions.

Messages are counted when decided (``send`` or deferred for quiet hours): a message
the dispatcher drops at a frequency cap still counts, so costs are an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Costs:
    """Cost of one message per channel, in the currency of the orders' totals."""

    push: float = 0.001
    email: float = 0.0005
    sms: float = 0.05
    webhook: float = 0.0
    slack: float = 0.0
    wecom: float = 0.0
    console: float = 0.0

    def of(self, channel: str) -> float:
        value = getattr(self, channel, 0.0)
        return float(value) if isinstance(value, int | float) else 0.0


def money(
    costs: Costs,
    messages: dict[str, int],
    discount: float,
    sent: int,
    conversions_sent: int,
    revenue_sent: float,
    held_out: int,
    revenue_held_out: float,
) -> dict[str, Any]:
    """The cost, ROI and incremental revenue of one trigger's (or variant's) tallies."""
    message_cost = sum(n * costs.of(channel) for channel, n in messages.items())
    cost = message_cost + discount
    incremental = None
    if sent and held_out:
        incremental = (revenue_sent / sent - revenue_held_out / held_out) * sent
    return {
        "messages": dict(sorted(messages.items())),
        "message_cost": round(message_cost, 4),
        "discount": round(discount, 2),
        "cost": round(cost, 4),
        "incremental_revenue": None if incremental is None else round(incremental, 2),
        "roi": None if incremental is None or cost <= 0 else round((incremental - cost) / cost, 4),
        "roi_attributed": round((revenue_sent - cost) / cost, 4) if cost > 0 else None,
        "cost_per_conversion": round(cost / conversions_sent, 4) if conversions_sent else None,
    }
