"""Lead qualified: a lead's score reached the MQL threshold; hand it to sales.

Scoring is ``scores.lead`` in the config (``core.segments``, ``core.scores``): points per
behaviour fading with a half-life, plus profile fit. Crossing ``mql`` decides once per
qualification, to an owner: by ``territory_attribute`` (a profile attribute such as
``region``) among the ``territories`` entries ``region:owner``, else from ``owners``;
round robin per lead from a hash of its id (``core.scores.owner``: the same on every
worker and in replay). A later order within ``attribution_window`` is the lead's
conversion in ``kairos report``, and so is a ``deal_won`` engagement event (a CRM's closed
deal, with its ``total``), which converts only this trigger's touch.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import attribution
from core.config import TriggerConfig, duration
from core.context import Ctx
from core.durations import DAY
from core.model import Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "lead_qualified"


@dataclass(frozen=True, slots=True)
class LeadQualifiedConfig(TriggerConfig):
    channel: str = "slack"  # the sales team's channel
    priority: int = 80
    owners: tuple[str, ...] = ()  # sales owners, round robin
    territory_attribute: str = ""  # e.g. region: route by attributes.region...
    territories: tuple[str, ...] = ()  # ...to these "region:owner" entries
    attribution_window: int = duration(30 * DAY)  # an order this soon is the lead's conversion
    template: str = "Lead {customer_id} qualified (score {score}): {owner}"


def on_deal_won(ctx: Ctx, ev: Event, cfg: LeadQualifiedConfig, late: bool) -> None:
    """A CRM's ``deal_won`` converts the lead's qualification (an order does too)."""
    attribution.on_deal(ctx, ev, NAME)


SPEC = TriggerSpec(
    name=NAME,
    config=LeadQualifiedConfig,
    events=frozenset({"deal_won"}),
    on_event=on_deal_won,
    template_vars=frozenset({"score", "owner", "territory", "mql", "qualification"}),
    doc=TriggerDoc(
        fires_when="a lead's score (`scores.lead`: behaviour points with a half-life, plus "
        "fit) reaches `scores.lead.mql`",
        key_parameters=("owners", "territory_attribute"),
        exits="once per qualification; below `requalify_below` it may qualify again; "
        "owner by territory or round robin",
    ),
)
