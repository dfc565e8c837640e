"""Win-back: an offer with a code that expires, for a customer who has churned.

Fires on the journey's move to ``churned`` (inactivity, see ``core.journey``).
``churn_alert`` with ``win_back_offer`` also makes this offer when a customer
goes ``at_risk``, through :func:`offer`.
"""

from __future__ import annotations

from core.config import WinBackConfig
from core.context import Ctx
from core.durations import DAY, iso
from core.ids import offer_code
from core.model import StageChange

NAME = "win_back"
STAGES = frozenset({"churned"})


def on_stage(ctx: Ctx, change: StageChange, cfg: WinBackConfig) -> None:
    offer(ctx, change, cfg)


def offer(ctx: Ctx, change: StageChange, cfg: WinBackConfig) -> None:
    """Decide a win-back offer for the stage change ``change`` (to at_risk or churned)."""
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
