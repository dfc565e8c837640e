"""Segment exited: a customer just left a watched audience ("a key account went quiet").

The counterpart of ``segment_entered`` (same evaluation, see ``core.segments``); by
default to the customer-success team's channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import TriggerConfig, duration
from core.durations import DAY
from core.trigger import TriggerDoc, TriggerSpec

NAME = "segment_exited"


@dataclass(frozen=True, slots=True)
class SegmentExitedConfig(TriggerConfig):
    channel: str = "slack"
    audiences: tuple[str, ...] = ()  # named audiences to watch; none: the trigger is idle
    recheck: int = duration(1 * DAY)  # re-evaluate on the clock this often (0s: events only)
    template: str = "{customer_id} left {audience}"


SPEC = TriggerSpec(
    name=NAME,
    config=SegmentExitedConfig,
    template_vars=frozenset({"audience"}),
    doc=TriggerDoc(
        fires_when="a customer leaves one of the named `audiences` (after an event, or on "
        "the `recheck` clock)",
        key_parameters=("audiences", "recheck"),
        exits="once per exit; watches nothing until `audiences` names some",
    ),
)
