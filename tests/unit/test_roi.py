"""Money of a trigger (``core.roi``, through ``core.effect``): message costs per channel,
discounts of redeemed offer codes, incremental revenue against the holdout, ROI."""

from __future__ import annotations

import pytest

from core.effect import Effect
from core.model import Conversion, Decision
from core.roi import Costs, money


def decision(i: int, status: str, channel: str = "sms", variant: str | None = None) -> Decision:
    return Decision(f"a{i}", "win_back", f"c{i}", channel, 0, status, "", {}, (), 0, variant)  # type: ignore[arg-type]


def test_money_known_values() -> None:
    costs = Costs(sms=0.05, email=0.001)
    m = money(costs, {"sms": 100, "email": 1000}, 30.0, 1100, 40, 2000.0, 200, 100.0)
    assert m["message_cost"] == pytest.approx(6.0)
    assert m["cost"] == pytest.approx(36.0)
    # 2000/1100 per sent decision against 100/200 per held-out one, over 1100 sent.
    assert m["incremental_revenue"] == pytest.approx(2000 - 0.5 * 1100)
    assert m["roi"] == pytest.approx((1450 - 36) / 36, rel=1e-4)
    assert m["roi_attributed"] == pytest.approx((2000 - 36) / 36, rel=1e-4)
    assert m["cost_per_conversion"] == pytest.approx(0.9)
    none = money(costs, {}, 0.0, 10, 0, 0.0, 0, 0.0)
    assert (none["roi"], none["incremental_revenue"], none["cost_per_conversion"]) == (None,) * 3


def test_effect_counts_messages_per_channel_and_discounts_per_variant() -> None:
    e = Effect()
    for i in range(10):
        e.decided(decision(i, "send", "sms" if i < 4 else "email", "A" if i < 4 else "B"))
    e.decided(decision(10, "held_out", "sms", "A"))
    e.decided(decision(11, "suppressed_consent", "sms", "A"))
    e.converted(Conversion("win_back", "sent", "a0", "c0", "o0", 85.0, 1, "A", 15.0))
    e.converted(Conversion("win_back", "sent", "a5", "c5", "o5", 40.0, 1, "B"))
    e.converted(Conversion("win_back", "held_out", "a10", "c10", "o10", 50.0, 1, "A"))
    s = e.summary(Costs(sms=0.05, email=0.001))
    assert s["messages"] == {"email": 6, "sms": 4}
    assert s["discount"] == 15.0
    assert s["cost"] == pytest.approx(4 * 0.05 + 6 * 0.001 + 15.0)
    a, b = s["variants"]["A"], s["variants"]["B"]
    assert (a["decisions"], a["sent"], a["held_out"], a["discount"]) == (6, 4, 1, 15.0)
    assert a["cost"] == pytest.approx(0.2 + 15.0)
    assert a["incremental_revenue"] == pytest.approx((85.0 / 4 - 50.0) * 4)
    assert (b["messages"], b["revenue"], b["conversions"]) == ({"email": 6}, 40.0, 1)
    assert b["versus_first"]["first"] == "A"
    # Shards merge into the same figures.
    merged = Effect()
    merged.add(e)
    assert merged.summary() == e.summary()
