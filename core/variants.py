"""Message variants of a trigger (A/B/n): which one a customer gets, and what it changes.

A trigger's ``variants:`` maps a name to a :class:`Variant`: a ``weight`` and the
trigger settings it overrides (``OVERRIDABLE``: template, channel, delay,
discount_percent, valid_for, whichever the trigger has). A customer always gets
the same variant of a trigger: the choice is a hash of (trigger, customer) with
its own salt, so it is independent of the holdout split (``core.policy``), which
hashes the same pair with another. Once decided under a variant (sent, held out,
shadow or deferred), a customer keeps it (``CustomerState.variants``) while it
exists, even when the weights change (``core.bandit``). Held-out customers get a variant too: the
held-out customers of a variant are its own control group (a variant with a
longer delay decides later, and so does its control).

The hooks of a trigger with variants run under the customer's variant config
(``core.hooks`` wraps them, once per config), so a delay or a discount applies
where the trigger uses it; :meth:`core.context.Ctx.decide` records the name.
A trigger without variants pays nothing: its hooks are bound as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from core.ids import unit_share

if TYPE_CHECKING:
    from core.config import TriggerConfig
    from core.model import CustomerState

OVERRIDABLE = ("template", "channel", "delay", "discount_percent", "valid_for")
"""Settings a variant may override, when its trigger has them."""

_KNOWN = 100_000  # customers whose variant config a trigger's hooks remember
SALT = "variant"  # the holdout hashes with "holdout": the two splits are independent

C = TypeVar("C", bound="TriggerConfig")


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant: its share of the traffic (relative to the others) and its overrides."""

    weight: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)  # setting -> value, file-validated


def choose(variants: dict[str, Variant], trigger: str, customer_id: str) -> str:
    """The variant ``customer_id`` gets for ``trigger``: stable, weighted, its own hash."""
    total = 0.0
    for v in variants.values():
        total += v.weight
    point = unit_share(SALT, trigger, customer_id) * total
    name = ""
    for name, v in variants.items():
        point -= v.weight
        if point < 0:
            return name
    return name  # float rounding at the very top: the last one


def configs(tcfg: C) -> dict[str, C]:
    """Each variant's trigger config: ``tcfg`` with the variant's overrides."""
    return {name: replace(tcfg, **v.overrides) for name, v in tcfg.variants.items()}


def picker(trigger: str, tcfg: C) -> Callable[[CustomerState], C]:
    """A customer's state -> the config of their variant (bound once per config)."""
    table = configs(tcfg)
    variants = tcfg.variants
    # Hooks ask on every event they listen to; a hash each time made a replay with
    # variants on three triggers 40% slower. Bounded: it holds recent customers only.
    known: dict[str, C] = {}

    def pick(state: CustomerState) -> C:
        kept = state.variants.get(trigger)
        if kept is not None and kept[0] in table:
            return table[kept[0]]
        customer_id = state.customer_id
        cfg = known.get(customer_id)
        if cfg is None:
            if len(known) >= _KNOWN:
                known.clear()
            cfg = known[customer_id] = table[choose(variants, trigger, customer_id)]
        return cfg

    return pick


def assigned(state: CustomerState, trigger: str, variants: dict[str, Variant]) -> tuple[str, float]:
    """The customer's variant of ``trigger`` and its share: the one they were first decided
    under while it exists (weights may have moved since), else the hash's choice now."""
    kept = state.variants.get(trigger)
    if kept is not None and kept[0] in variants:
        return kept[0], kept[1]
    name = choose(variants, trigger, state.customer_id)
    return name, share(variants, name)


def share(variants: dict[str, Variant], name: str) -> float:
    """The share of customers assigned to variant ``name``."""
    total = sum(v.weight for v in variants.values())
    return variants[name].weight / total if total > 0 else 0.0
