"""NPS detractor: a low NPS answer or review alerts the customer-success team at once.

An ``nps`` score from 0 to ``max_score`` or a ``review`` scored at or below
``review_max_score``. Events without a score are ignored. Late events still
alert: an unhappy customer stays unhappy.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import NPS_SCORE, TriggerConfig, setting
from core.context import Ctx
from core.model import Event
from core.trigger import TriggerDoc, TriggerSpec

NAME = "nps_detractor"


@dataclass(frozen=True, slots=True)
class NpsDetractorConfig(TriggerConfig):
    channel: str = "slack"
    max_score: float = setting(6, limit=NPS_SCORE)  # nps 0-6 is a detractor
    review_max_score: float = 2  # reviews at or below this score
    priority: int = 90
    template: str = "Detractor {customer_id} scored {score}"


def on_event(ctx: Ctx, ev: Event, cfg: NpsDetractorConfig, late: bool) -> None:
    score = ev.score
    if score is None:
        return
    limit = cfg.max_score if ev.type == "nps" else cfg.review_max_score
    if score > limit:
        return
    ctx.decide(
        NAME,
        cfg,
        ev.event_id,
        reason=f"{ev.type} score {score:g} <= {limit:g} (event {ev.event_id})",
        payload={"score": score, "kind": ev.type},
        sources=(ev.event_id,),
        cause_ts=ev.ts,
    )


SPEC = TriggerSpec(
    name=NAME,
    config=NpsDetractorConfig,
    template_vars=frozenset({"score", "kind"}),
    events=frozenset({"nps", "review"}),
    on_event=on_event,
    doc=TriggerDoc(
        fires_when="an `nps` score from 0 to `max_score` or a `review` at or below "
        "`review_max_score`",
        key_parameters=("max_score", "review_max_score"),
        exits="alert within seconds, late events included",
    ),
)
