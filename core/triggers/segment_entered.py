"""Segment entered: a customer just entered a watched audience ("became a VIP").

The audiences named in ``audiences`` are evaluated after every event and timer of a
customer (``core.segments``); entering one decides once per entry. Time alone can move
a customer in or out (``days_since_active > 14``): every ``recheck`` a timer evaluates
them again while they are in a watched audience or were recently active.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import TriggerConfig, duration
from core.durations import DAY
from core.trigger import TriggerDoc, TriggerSpec

NAME = "segment_entered"


@dataclass(frozen=True, slots=True)
class SegmentEnteredConfig(TriggerConfig):
    channel: str = "email"
    audiences: tuple[str, ...] = ()  # named audiences to watch; none: the trigger is idle
    recheck: int = duration(1 * DAY)  # re-evaluate on the clock this often (0s: events only)
    template: str = "Welcome to {audience}, {first_name}!"


SPEC = TriggerSpec(
    name=NAME,
    config=SegmentEnteredConfig,
    template_vars=frozenset({"audience"}),
    doc=TriggerDoc(
        fires_when="a customer enters one of the named `audiences` (after an event, or on "
        "the `recheck` clock)",
        key_parameters=("audiences", "recheck"),
        exits="once per entry; watches nothing until `audiences` names some",
    ),
)
