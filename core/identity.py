"""Identity stitching: fold an anonymous visitor's history into the customer who logged in.

An event carrying both ``customer_id`` C and ``anonymous_id`` A asks for A's
state (``Step.merges``); A's history may live on another partition, so the
worker sends the request through the internal ``identity`` topic to A's owner,
which answers with A's state keyed by C. :func:`merge` then folds it in:
activity windows and recent views are combined, the earlier first-seen time
kept, an anonymous cart adopted when C has none, and the journey stage raised
to the further of the two (before a purchase stages only move forward). Then the
triggers' ``on_merge`` hooks run (``abandoned_cart`` arms an adopted cart's deadline).
Each anonymous id is merged once per customer, however often the request or the
answer is delivered.
"""

from __future__ import annotations

from core import scores, windows
from core.config import Config
from core.context import Ctx
from core.hooks import bound
from core.model import STAGE_RANK, VIEW_TS, CustomerState, Event, Stage, Step, View
from core.trigger import Merge

MAX_MERGED = 8
# the stages before a purchase, by name: a stage read from another worker's state is text
_PRE_PURCHASE: dict[str, Stage] = {
    "new": "new",
    "awareness": "awareness",
    "interest": "interest",
    "consideration": "consideration",
}


def _view_ts(view: View) -> int:
    return view[VIEW_TS]


def wants_merge(state: CustomerState, ev: Event) -> str | None:
    """The anonymous id to request for ``ev``, if it was not merged yet (and remember it)."""
    anonymous_id = ev.anonymous_id
    if not anonymous_id or anonymous_id == state.customer_id or anonymous_id in state.merged:
        return None
    state.merged.append(anonymous_id)
    if len(state.merged) > MAX_MERGED:
        del state.merged[0]
    return anonymous_id


def merge(state: CustomerState, other: CustomerState, now: int, cfg: Config) -> Step:
    """Fold ``other`` (an anonymous visitor's state) into ``state``; idempotent per id."""
    ctx = Ctx(state, now, cfg)
    mark = f"merged:{other.customer_id}"
    if mark in state.marks:
        return ctx
    state.marks[mark] = now
    for name, buckets in other.counts.items():
        mine = state.counts.setdefault(name, [])
        for start, count in buckets:
            windows.add(mine, start, max(state.max_ts, other.max_ts), count)
    if other.views:
        views = sorted(state.views + other.views, key=_view_ts)
        state.views[:] = views[-cfg.engine.recent_views :]
    if other.first_seen and (not state.first_seen or other.first_seen < state.first_seen):
        state.first_seen = other.first_seen
    state.last_active = max(state.last_active, other.last_active)
    state.max_ts = max(state.max_ts, other.max_ts)
    if other.lead:  # a visitor's interest before signing up is the lead's too (faded alike)
        lead_at = other.lead[scores.LEAD_AT]
        half_life = cfg.scores.lead.half_life
        scores.add_points(state, other.lead[scores.LEAD_SCORE], lead_at, half_life)
    for tag in other.tags:
        if tag not in state.tags:
            state.tags.append(tag)
    adopted_cart = bool(other.cart and not state.cart and not state.checkout_value)
    if adopted_cart:
        state.cart.update(other.cart)
        state.cart_id += 1
        state.cart_at = other.cart_at
        state.cart_events[:] = other.cart_events
        state.currency = state.currency or other.currency
    hooks = bound(cfg).on_merge
    if hooks:
        merge = Merge(other, adopted_cart)
        for hook, tcfg in hooks:
            hook(ctx, merge, tcfg)
    further = _PRE_PURCHASE.get(other.stage)
    if (
        further is not None
        and state.stage in _PRE_PURCHASE
        and STAGE_RANK[further] > STAGE_RANK[state.stage]
    ):
        ctx.stage(further, None, now)
    return ctx
