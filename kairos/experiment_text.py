"""The text form of a trigger's experiment figures, shared by ``kairos report`` and ``kairos replay``.

The figures themselves are ``core.effect.Effect.summary``'s: both commands print the
same numbers, from the same code.
"""

from __future__ import annotations

from typing import Any

from core.config import Config


def first_variants(cfg: Config | None) -> dict[str, str]:
    """Per trigger with variants, the first one in the config: the others are compared with it."""
    if cfg is None:
        return {}
    return {t: next(iter(c.variants)) for t, c in cfg.triggers.items() if c.variants}


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}pp"


def _interval(interval: list[float] | None) -> str:
    return "" if not interval else f" [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]"


def _money(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.2f}{suffix}"


def _roi(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:,.0f}%"


def experiment_lines(trigger: str, s: dict[str, Any]) -> list[str]:
    """Money and always-valid uplift of one trigger, and one block per variant."""
    lines = [
        f"{trigger}: cost {_money(s['cost'])} (messages {_money(s['message_cost'])}, "
        f"discounts {_money(s['discount'])}), incremental revenue "
        f"{_money(s['incremental_revenue'])}, ROI {_roi(s['roi'])}, cost/conversion "
        f"{_money(s['cost_per_conversion'])}",
        f"  uplift {_pp(s['uplift'])}, always valid{_interval(s['interval']) or ' -'}: "
        f"{s['verdict']}",
    ]
    for name, v in (s.get("variants") or {}).items():
        channels = ", ".join(f"{c} {n:,}" for c, n in v["messages"].items()) or "no messages"
        rate = "-" if not v["sent"] else f"{v['conversions_sent'] / v['sent'] * 100:.1f}%"
        lines.append(
            f"  variant {name}: {v['decisions']:,} decided, {v['sent']:,} sent ({channels}), "
            f"{v['held_out']:,} held out; {v['conversions_sent']:,} conversions ({rate}), "
            f"revenue {_money(v['revenue_sent'])}; cost {_money(v['cost'])}, ROI {_roi(v['roi'])}"
        )
        lines.append(
            f"    vs its holdout: {_pp(v['uplift'])}{_interval(v['interval'])}: {v['verdict']}"
        )
        versus = v.get("versus_first")
        if versus:
            lines.append(
                f"    vs {versus['first']}: {_pp(versus['diff'])}{_interval(versus['interval'])}: "
                f"{versus['verdict']}"
            )
    return lines
