"""NPS detractor: a low NPS answer or review alerts the customer-success team at once.

An ``nps`` score from 0 to ``max_score`` or a ``review`` scored at or below
``review_max_score``. Events without a score are ignored. Late events still
alert: an unhappy customer stays unhappy.
"""

from __future__ import annotations

from core.config import NpsDetractorConfig
from core.context import Ctx
from core.model import Event

NAME = "nps_detractor"
EVENTS = frozenset({"nps", "review"})


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
