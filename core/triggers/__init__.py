"""The trigger registry: a trigger is one module here plus one line in ``BUILT_IN``.

Each module declares ``SPEC``, a :class:`core.trigger.TriggerSpec`; :func:`register`
adds it (a trigger outside this package registers the same way). Registration
order is the order hooks run in when several triggers listen to the same event
type, timer or stage, and the order of ``triggers:`` in a config.

Bookkeeping in ``CustomerState.marks`` uses keys ``"<trigger>.<what>"`` (the bare
trigger name is the policy's last decision time, for cooldowns).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from core.config import TriggerConfig
from core.trigger import TriggerSpec

SPECS: dict[str, TriggerSpec[Any]] = {}
"""Every registered trigger by name, in registration order."""

TRIGGER_TYPES: dict[str, type[TriggerConfig]] = {}
"""Each registered trigger's config type (the schema of ``triggers.<name>`` in a file)."""


def register(spec: TriggerSpec[Any]) -> TriggerSpec[Any]:
    """Add a trigger; configs made from now on include it at its defaults."""
    if not isinstance(spec, TriggerSpec):
        raise TypeError(f"expected a core.trigger.TriggerSpec, got {spec!r}")
    if spec.name in SPECS:
        raise ValueError(f"trigger {spec.name!r} is already registered")
    owners = {kind: other.name for other in SPECS.values() for kind in other.timers}
    for kind in sorted(spec.timers & owners.keys()):
        raise ValueError(f"trigger {spec.name!r}: timer kind {kind!r} is {owners[kind]}'s")
    SPECS[spec.name] = spec
    TRIGGER_TYPES[spec.name] = spec.config
    return spec


def unregister(name: str) -> None:
    """Remove a trigger (tests of throwaway triggers clean up with this)."""
    del SPECS[name], TRIGGER_TYPES[name]


BUILT_IN = (
    "abandoned_cart",
    "browse_abandonment",
    "limited_time_offer",
    "post_purchase",
    "welcome",
    "churn_alert",
    "win_back",
    "nps_detractor",
    "segment_entered",
    "segment_exited",
    "lead_qualified",
    "tier_changed",
    "points_expiring",
    "birthday",
)

for _name in BUILT_IN:
    register(import_module(f"{__name__}.{_name}").SPEC)
