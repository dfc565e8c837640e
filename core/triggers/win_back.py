"""Win-back: an offer with a code that expires, for a customer who has churned.

Fires on the journey's move to ``churned`` (inactivity, see ``core.journey``).
``churn_alert`` with ``win_back_offer`` also makes this offer when a customer
goes ``at_risk``: its declaration hands that stage change to this trigger's hook
(``core.trigger.Handoff``), which then runs under this trigger's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import PERCENT, TriggerConfig, duration, setting
from core.context import Ctx
from core.durations import DAY, iso
from core.ids import offer_code
from core.model import StageChange
from core.trigger import TriggerDoc, TriggerSpec

NAME = "win_back"


@dataclass(frozen=True, slots=True)
class WinBackConfig(TriggerConfig):
    channel: str = "email"
    discount_percent: int = setting(15, limit=PERCENT)
    valid_for: int = duration(7 * DAY)
    template: str = "We miss you: {discount_percent}% off with code {code}"


def on_stage(ctx: Ctx, change: StageChange, cfg: WinBackConfig) -> None:
    """Decide a win-back offer for the stage change ``change`` (to churned, or at_risk)."""
    state = ctx.state
    discriminator = (change.to_stage, change.at)
    code = offer_code(NAME, state.customer_id, discriminator)
    expires_at = ctx.now + cfg.valid_for
    days = max(0, change.at - state.last_active) // DAY
    ctx.decide(
        NAME,
        cfg,
        discriminator,
        reason=f"{change.to_stage} after {days} days without activity (last at "
        f"{iso(state.last_active)}); offer {code} of {cfg.discount_percent}% until {iso(expires_at)}",
        payload={
            "code": code,
            "expires_at": expires_at,
            "discount_percent": cfg.discount_percent,
            "stage": change.to_stage,
        },
        sources=(change.event_id,) if change.event_id else (),
        cause_ts=change.at,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=WinBackConfig,
    template_vars=frozenset({"code", "expires_at", "discount_percent"}),
    stages=frozenset({"churned"}),
    on_stage=on_stage,
    doc=TriggerDoc(
        fires_when="a customer churns (or goes `at_risk`, with `churn_alert`'s `win_back_offer`)",
        key_parameters=("discount_percent", "valid_for"),
        exits="once per stage change",
    ),
)
