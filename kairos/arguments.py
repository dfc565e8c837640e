"""Argument types for ``argparse``: counts, shares, ports and durations, checked at the door.

Each returns the value or raises ``argparse.ArgumentTypeError`` with what was expected,
so ``kairos replay --jobs 0`` or ``kairos simulate --span soon`` ends in one line naming
the option instead of a traceback (or a silent clamp) further in.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from core.durations import parse_duration


def count(minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number from ``minimum`` (to ``maximum``): customers, events, jobs..."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            what = "negative" if value < 0 else "too small"
            raise argparse.ArgumentTypeError(f"{value} is {what}: expected {minimum} or more")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is too large: expected at most {maximum}")
        return value

    return parse


def number(
    minimum: float = 0.0, maximum: float | None = None, above: bool = False
) -> Callable[[str], float]:
    """A finite number of at least ``minimum`` (more than it with ``above``): rates, seconds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum or (above and value == minimum):
            what = "negative" if value < 0 else "too small"
            bound = f"more than {minimum:g}" if above else f"{minimum:g} or more"
            raise argparse.ArgumentTypeError(f"{text} is {what}: expected {bound}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is too large: expected at most {maximum:g}")
        return value

    return parse


def port(text: str) -> int:
    """A TCP port, or 0 for "off" / "pick a free one" (as the option's help says)."""
    return count(0, 65535)(text)


def duration(text: str) -> int:
    """Milliseconds from ``30m``, ``2h``, ``7d`` (a bare number is seconds), up to ten years."""
    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"{text} is negative: a duration is 0s or more")
    try:
        return parse_duration(text)  # also refuses more than ten years (core/durations.py)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
