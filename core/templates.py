"""Message templates: ``"{item_count} items worth {cart_value}, until {expires_at}"``.

Templates use ``str.format`` braces with plain names only. Campaign owners write
them, so rendering is deliberately small and safe: no attribute or index access,
no conversions, no code; a missing value renders as an empty string.

Values render for the person who reads them, in the customer's time zone and locale
(``timezone`` and ``locale`` of their profile; ``policy.default_timezone`` and English
when unknown):

- times (``expires_at``, ``deliver_at``, ``last_active``: epoch milliseconds) read like
  ``Dec 1, 5:46 PM CET`` or ``1. Dez., 17:46 CET``; a template can choose the form per
  placeholder with strftime directives, ``{expires_at:%d %b %H:%M}`` (names of months,
  weekdays and AM/PM in the customer's language);
- amounts (``cart_value``, ``total``) carry their currency: ``€59.90``, ``59,90 €``; a
  template that writes ``{currency}`` itself gets the bare amount to the currency's
  decimals (``59.90 EUR``);
- lists of items read ``2 x sku-1, sku-2``; other numbers take simple format specs
  (``{score:.1f}``, ``{views:>3}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from string import Formatter
from typing import Any, Literal, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_skeleton,
    format_time,
    get_day_names,
    get_month_names,
)
from babel.numbers import format_currency, format_decimal, get_currency_precision

from core.triggers import SPECS

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


class _TemplateVars(Mapping[str, frozenset[str]]):
    """Per registered trigger, the variables its template may use: its declaration's
    ``template_vars`` and the common ones. A view: a trigger registered later is in it."""

    def __getitem__(self, trigger: str) -> frozenset[str]:
        return COMMON_VARS | SPECS[trigger].template_vars

    def __iter__(self) -> Iterator[str]:
        return iter(SPECS)

    def __len__(self) -> int:
        return len(SPECS)


TEMPLATE_VARS: Mapping[str, frozenset[str]] = _TemplateVars()
"""The variables a template of each trigger may use (common ones included)."""

TIME_VARS = frozenset({"expires_at", "deliver_at", "last_active"})
"""Epoch-millisecond values: rendered as local date and time, never as a number."""

MONEY_VARS = frozenset({"cart_value", "total"})
"""Amounts in the payload's ``currency``."""

DEFAULT_LOCALE = "en"

# Alignment, width up to 99, thousands separator, precision up to 99, type s/d/f/%.
_SIMPLE_SPEC = re.compile(r"[<>^]?\d{0,2},?(?:\.\d{1,2})?[sdf%]?")
# strftime directives a time placeholder may use, with any text between them.
_TIME_SPEC = re.compile(r"(?:[^%{}]|%[aAbBdeHIjmMpSyYZzcxX%]){1,64}")
_DIRECTIVE = re.compile(r"%(.)")
# CLDR puts no-break spaces in times and amounts (11:46\u202fAM, 59,90\xa0€): plain spaces
# read the same and keep an SMS in the GSM alphabet instead of UCS-2 (half the length).
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\xa0": " "})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMATTER = Formatter()


def template_vars(trigger: str) -> frozenset[str]:
    """The variables available to ``trigger``'s template; the common ones for unknown triggers."""
    spec = SPECS.get(trigger)
    return COMMON_VARS if spec is None else COMMON_VARS | spec.template_vars


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
        if spec:
            _check_spec(name, spec, field)
        parts.append((literal, name, spec or ""))
    return parts


def _check_spec(name: str, spec: str, field: str) -> None:
    if name in TIME_VARS:
        if not (_TIME_SPEC.fullmatch(spec) and "%" in spec):
            raise ValueError(
                f"expected a date format like {{{name}:%d %b %H:%M}} "
                f"(directives %a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y %Z %z %c %x %X), "
                f"got {field}"
            )
    elif not _SIMPLE_SPEC.fullmatch(spec):
        times = ", ".join(sorted(TIME_VARS))
        raise ValueError(
            f"expected a simple format like {{{name}:.2f}}, got {field} "
            f"(date formats like %d %b apply to times only: {times})"
        )


def template_fields(template: str) -> set[str]:
    """The variable names a template uses.

    Raises ValueError for attribute or index access (``{a.b}``, ``{a[0]}``),
    conversions (``{a!r}``), positional fields (``{}``, ``{0}``), format specs
    beyond the simple ones (date formats on time fields only) and unbalanced braces.
    """
    return {name for _, name, _ in _parts(template) if name is not None}


def render(
    template: str,
    values: Mapping[str, object],
    *,
    default_timezone: str = "UTC",
    default_locale: str = DEFAULT_LOCALE,
) -> str:
    """Substitute plain names from ``values``; missing names render as ``""``.

    ``values["timezone"]`` and ``values["locale"]`` (the customer's) decide how times
    and amounts read; unknown or invalid ones fall back to the defaults. Raises
    ValueError for a template :func:`template_fields` rejects (config validation
    rejects those before they get here).
    """
    parts = _parts(template)
    reader = _Reader(values, default_timezone, default_locale, parts)
    out: list[str] = []
    for literal, name, spec in parts:
        out.append(literal)
        if name is not None:
            out.append(reader.format(name, values.get(name), spec))
    return "".join(out)


class _Reader:
    """How one customer reads values: their zone, their language, the payload's currency."""

    def __init__(
        self,
        values: Mapping[str, object],
        default_timezone: str,
        default_locale: str,
        parts: list[tuple[str, str | None, str]],
    ) -> None:
        self.zone: ZoneInfo = (
            _zone(values.get("timezone")) or _zone(default_timezone) or ZoneInfo("UTC")
        )
        self.locale: Locale = (
            _locale(values.get("locale")) or _locale(default_locale) or Locale(DEFAULT_LOCALE)
        )
        currency = values.get("currency")
        self.currency = currency.upper() if _is_currency(currency) else None
        # A template that writes {currency} itself wants bare amounts next to it.
        self.symbol = not any(name == "currency" for _, name, _ in parts)

    def format(self, name: str, value: object, spec: str) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value)
        if name in TIME_VARS and isinstance(value, int):
            return self.time(value, spec).translate(_PLAIN_SPACES)
        if name in MONEY_VARS and isinstance(value, int | float | Decimal) and not spec:
            return self.money(value).translate(_PLAIN_SPACES)
        if isinstance(value, list | tuple):
            return ", ".join(_item(v) for v in value)
        if spec and isinstance(value, int | float | Decimal | str):
            try:
                return format(value, spec)
            except (ValueError, TypeError):
                pass  # a spec that does not fit the value is ignored
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # a score of 3.0 reads "3"
        return str(value)

    def time(self, ms: int, spec: str) -> str:
        try:
            moment = datetime.fromtimestamp(ms / 1000, self.zone)
        except (OverflowError, OSError, ValueError):
            return ""  # out of any calendar: nothing a person could read
        if spec:
            return _DIRECTIVE.sub(lambda m: self.directive(moment, m.group(1)), spec)
        date = format_skeleton("MMMd", moment, locale=self.locale)
        clock = format_time(moment, "short", locale=self.locale)
        pattern = self.locale.datetime_formats["medium"]
        text = str(pattern).replace("{1}", date).replace("{0}", clock)
        return f"{text} {moment.tzname()}"

    def directive(self, moment: datetime, code: str) -> str:
        loc = self.locale
        if code in "bB":
            month: Literal["abbreviated", "wide"] = "abbreviated" if code == "b" else "wide"
            return str(get_month_names(month, "format", loc)[moment.month])
        if code in "aA":
            day: Literal["abbreviated", "wide"] = "abbreviated" if code == "a" else "wide"
            return str(get_day_names(day, "format", loc)[moment.weekday()])
        if code == "p":
            return format_time(moment, "a", locale=loc)
        if code == "c":
            return self.time(int(moment.timestamp() * 1000), "")
        if code == "x":
            return format_date(moment, "medium", locale=loc)
        if code == "X":
            return format_time(moment, "short", locale=loc)
        if code == "e":
            return f"{moment.day:>2}"
        return moment.strftime("%" + code)  # numbers, %Z, %z and %%: the same in any language

    def money(self, amount: int | float | Decimal) -> str:
        if self.currency is None:
            return format_decimal(amount, "#,##0.00", locale=self.locale)
        if self.symbol:
            return format_currency(amount, self.currency, locale=self.locale)
        digits = get_currency_precision(self.currency)
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(amount, pattern, locale=self.locale)


def _item(value: Any) -> str:
    """One entry of a list placeholder: a cart item reads ``2 x sku-1`` (``sku-1`` for one)."""
    if isinstance(value, Mapping):
        product = value.get("product_id", "")
        quantity = value.get("quantity", 1)
        if isinstance(quantity, int | float) and quantity != 1:
            return f"{quantity:g} x {product}"
        return str(product)
    return str(value)


def _is_currency(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()


def _zone(name: object) -> ZoneInfo | None:
    return _zone_named(name) if isinstance(name, str) and name else None


def _locale(name: object) -> Locale | None:
    return _locale_named(name) if isinstance(name, str) and name else None


@lru_cache(maxsize=256)
def _zone_named(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=256)
def _locale_named(name: str) -> Locale | None:
    try:
        return Locale.parse(name.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None
