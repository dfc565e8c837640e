"""Message templates: ``"{item_count} items worth {cart_value} {currency}"``.

Templates use ``str.format`` braces with plain names only. Campaign owners write
them, so rendering is deliberately small and safe: no attribute or index access,
no conversions, no code; a missing value renders as an empty string and only
simple format specs (``{cart_value:.2f}``, ``{total:,.2f}``, ``{name:>10}``) apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from string import Formatter

COMMON_VARS = frozenset(
    {
        "customer_id",
        "trigger",
        "action_id",
        "email",
        "phone",
        "locale",
        "timezone",
        "first_name",  # from profile attributes
    }
)

_TRIGGER_VARS = {
    "abandoned_cart": {"cart_value", "currency", "item_count", "items", "step"},
    "browse_abandonment": {"product_id", "category", "views"},
    "limited_time_offer": {"product_id", "code", "expires_at", "discount_percent", "reason"},
    "post_purchase": {"order_id", "kind", "total"},
    "welcome": {"reason"},
    "churn_alert": {"reason", "stage", "days_inactive"},
    "win_back": {"code", "expires_at", "discount_percent"},
    "nps_detractor": {"score", "kind"},
}

TEMPLATE_VARS: dict[str, frozenset[str]] = {
    name: COMMON_VARS | names for name, names in _TRIGGER_VARS.items()
}
"""The variables a template of each trigger may use (common ones included)."""

# Alignment, width up to 99, thousands separator, precision up to 99, type s/d/f/%.
_SIMPLE_SPEC = re.compile(r"[<>^]?\d{0,2},?(?:\.\d{1,2})?[sdf%]?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMATTER = Formatter()


def template_vars(trigger: str) -> frozenset[str]:
    """The variables available to ``trigger``'s template; the common ones for unknown triggers."""
    return TEMPLATE_VARS.get(trigger, COMMON_VARS)


def _parts(template: str) -> list[tuple[str, str | None, str]]:
    """Split into (literal, field name or None, spec); ValueError for anything but plain names."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        hint = "write {{ or }} for a literal brace"
        raise ValueError(f"expected balanced braces ({hint}): {exc}") from None
    parts: list[tuple[str, str | None, str]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None, ""))
            continue
        field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        field += "}"
        if not _NAME.fullmatch(name) or conversion is not None:
            raise ValueError(f"expected plain {{name}} fields like {{cart_value}}, got {field}")
        if spec and not _SIMPLE_SPEC.fullmatch(spec):
            raise ValueError(f"expected a simple format like {{{name}:.2f}}, got {field}")
        parts.append((literal, name, spec or ""))
    return parts


def template_fields(template: str) -> set[str]:
    """The variable names a template uses.

    Raises ValueError for attribute or index access (``{a.b}``, ``{a[0]}``),
    conversions (``{a!r}``), positional fields (``{}``, ``{0}``), complex format
    specs and unbalanced braces.
    """
    return {name for _, name, _ in _parts(template) if name is not None}


def _format(value: object, spec: str) -> str:
    if value is None:
        return ""
    if spec and isinstance(value, int | float | Decimal | str) and not isinstance(value, bool):
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            pass  # a spec that does not fit the value is ignored
    return str(value)


def render(template: str, values: Mapping[str, object]) -> str:
    """Substitute plain names from ``values``; missing names render as ``""``.

    Raises ValueError for a template :func:`template_fields` rejects (config
    validation rejects those before they get here).
    """
    out: list[str] = []
    for literal, name, spec in _parts(template):
        out.append(literal)
        if name is not None:
            out.append(_format(values.get(name), spec))
    return "".join(out)
