"""The trigger catalog: adding a trigger is one module here and one line in ``ALL``.

A trigger module defines ``NAME``, and any of:
- ``EVENTS`` + ``on_event(ctx, ev, cfg, late)``: react to event types;
- ``TIMERS`` + ``on_timer(ctx, kind, due, cfg)``: fire its own deadlines;
- ``STAGES`` + ``on_stage(ctx, change, cfg)``: react to journey stage changes.

Timer kinds are unique across triggers; bookkeeping in ``CustomerState.marks``
uses keys ``"<trigger>.<what>"`` (the bare trigger name is the policy's last
decision time, for cooldowns).
"""

from __future__ import annotations

from types import ModuleType

from core.triggers import (
    abandoned_cart,
    browse_abandonment,
    churn_alert,
    limited_time_offer,
    nps_detractor,
    post_purchase,
    welcome,
    win_back,
)

ALL: tuple[ModuleType, ...] = (
    abandoned_cart,
    browse_abandonment,
    limited_time_offer,
    post_purchase,
    welcome,
    churn_alert,
    win_back,
    nps_detractor,
)
