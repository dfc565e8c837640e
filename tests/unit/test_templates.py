"""Templates: plain {name} substitution, safe by construction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.templates import COMMON_VARS, TEMPLATE_VARS, render, template_fields, template_vars
from core.triggers import TRIGGER_TYPES


def test_every_trigger_has_its_variables_and_the_common_ones() -> None:
    assert set(TEMPLATE_VARS) == set(TRIGGER_TYPES)
    for names in TEMPLATE_VARS.values():
        assert names >= COMMON_VARS
    assert {"cart_value", "currency", "item_count"} <= TEMPLATE_VARS["abandoned_cart"]
    assert "cart_value" not in TEMPLATE_VARS["welcome"]


def test_unknown_trigger_gets_the_common_variables() -> None:
    assert template_vars("not_a_trigger") == COMMON_VARS


def test_default_templates_use_only_their_triggers_variables() -> None:
    for name, cls in TRIGGER_TYPES.items():
        assert template_fields(cls().template) <= TEMPLATE_VARS[name], name


def test_template_fields_lists_the_names_used() -> None:
    assert template_fields("{item_count} items worth {cart_value:.2f} {currency}") == {
        "item_count",
        "cart_value",
        "currency",
    }
    assert template_fields("no fields, {{literal}}") == set()


@pytest.mark.parametrize(
    "template",
    ["{x.__class__}", "{a.b}", "{a[0]}", "{a!r}", "{a!s}", "{}", "{0}", "{ a }"],
)
def test_template_fields_rejects_anything_but_plain_names(template: str) -> None:
    with pytest.raises(ValueError, match="expected plain"):
        template_fields(template)


@pytest.mark.parametrize("template", ["{x:{y}}", "{x:>999999}", "{x:%Y}"])
def test_template_fields_rejects_complex_format_specs(template: str) -> None:
    with pytest.raises(ValueError, match="simple format"):
        template_fields(template)


@pytest.mark.parametrize("template", ["{x", "}", "a } b"])
def test_template_fields_rejects_unbalanced_braces(template: str) -> None:
    with pytest.raises(ValueError, match="balanced braces"):
        template_fields(template)


def test_render_substitutes_plain_names() -> None:
    text = render(
        "You left {item_count} item(s) worth {cart_value} {currency}",
        {"item_count": 2, "cart_value": 59.9, "currency": "EUR"},
    )
    assert text == "You left 2 item(s) worth 59.90 EUR"


def test_render_missing_and_none_values_are_empty() -> None:
    assert render("Hi {first_name}!", {}) == "Hi !"
    assert render("Hi {first_name}!", {"first_name": None}) == "Hi !"


def test_render_keeps_escaped_braces() -> None:
    assert render("{{code}} is {code}", {"code": "SAVE10"}) == "{code} is SAVE10"


def test_render_applies_simple_format_specs() -> None:
    assert render("{total:,.2f}", {"total": 1234.5}) == "1,234.50"
    assert render("{discount_percent:d}%", {"discount_percent": 10}) == "10%"
    assert render("[{name:>5}]", {"name": "ab"}) == "[   ab]"


def test_render_ignores_a_spec_that_does_not_fit_the_value() -> None:
    assert render("{total:.2f}", {"total": "n/a"}) == "n/a"
    assert render("{flag:d}", {"flag": True}) == "True"


def test_render_rejects_attribute_access() -> None:
    with pytest.raises(ValueError, match="expected plain"):
        render("{x.__class__}", {"x": 1})
    with pytest.raises(ValueError, match="expected plain"):
        render("{x.__init__.__globals__}", {"x": object()})


def test_render_does_not_interpret_values() -> None:
    """A value containing braces is data, not a template."""
    assert render("{a}", {"a": "{b.__class__}", "b": 1}) == "{b.__class__}"


@given(st.text())
def test_render_never_fails_on_literal_text_and_values(value: str) -> None:
    assert render("<{v}>", {"v": value}) == f"<{value}>"
