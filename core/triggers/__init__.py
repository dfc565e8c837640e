"""The trigger catalog: adding a trigger is one module here and one line in ``ALL``.

A trigger module defines ``NAME``, and any of:
- ``EVENTS`` + ``on_event(ctx, ev, cfg, late)``: react to event types;
- ``TIMERS`` + ``on_timer(ctx, kind, due, cfg)``: fire its own deadlines;
- ``STAGES`` + ``on_stage(ctx, change, cfg)``: react to journey stage changes.
"""

from __future__ import annotations

from types import ModuleType

from core.triggers import abandoned_cart

ALL: tuple[ModuleType, ...] = (abandoned_cart,)
