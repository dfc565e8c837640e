"""Related products, learned on the stream: item-to-item co-views and co-purchases.

What is learned: for each product, the products viewed near it (within ``co_window``
by the same customer) or bought with it (``purchase_weight`` each), and for each
category (key ``#<category>``) its most viewed products, the cold-start fallback.

How it is kept, bounded: each key holds at most ``related`` entries, a space-saving
sketch (when full, a new item replaces the weakest and inherits its count: the
heavy hitters are kept, each count over-estimated by at most the evicted one);
at most ``max_products`` keys in total, the least recently updated dropped first.
Counts decay with ``half_life`` by forward decay: an observation at ``ts`` of weight
``w`` adds ``w * 2**(ts / half_life)``, kept as a base-2 logarithm so nothing
overflows and nothing is rescaled; every count compares at any common time, and the
scores of different keys (kept on different workers) add up correctly.

Where it runs: a customer's events give *observations* (``observe``: key, item,
log-weight; plus the product's category); a learner applies them to the sketch of
their key. ``kairos replay`` applies them in-process to one :class:`Model`; the live
worker sends them on a topic keyed by product, whose owner applies them and publishes
each key's sketch for every worker to read (``agents/products.py``). The core reads
sketches through :data:`CATALOG`, installed by whichever runs it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from core.config import RecommendConfig
from core.context import Ctx
from core.model import VIEW_EVENT, VIEW_PRODUCT, VIEW_TS, CustomerState, Event

Sketch = dict[str, float]  # item -> log2 of its forward-decayed count
Observation = tuple[str, str, float]  # (key, item, log2 weight)

CATEGORY = "#"  # prefix of a category's key
_BOUGHT = 30  # products remembered as bought per customer (never recommended back)
_PARTNERS = 5  # a view pairs with at most this many distinct products viewed just before
_SEEDS = 5  # recommendations start from at most this many products (the first given)


def log_weight(weight: float, ts: int, half_life: int) -> float:
    """The log2 of ``weight`` observed at ``ts``, forward-decayed."""
    return math.log2(weight) + ts / half_life


def log_add(a: float, b: float) -> float:
    """log2(2**a + 2**b) without overflow."""
    if a < b:
        a, b = b, a
    return a + math.log2(1.0 + 2.0 ** (b - a))


def add(sketch: Sketch, item: str, logw: float, capacity: int) -> str | None:
    """Count ``item`` in a space-saving sketch of at most ``capacity`` items; returns the
    item it evicted, if any."""
    old = sketch.get(item)
    if old is not None:
        sketch[item] = log_add(old, logw)
    elif len(sketch) < capacity:
        sketch[item] = logw
    else:
        weakest = min(sketch, key=sketch.__getitem__)
        floor = sketch.pop(weakest)
        sketch[item] = log_add(floor, logw)
        return weakest
    return None


class Catalog(Protocol):
    """What the core reads: a key's sketch, and a product's category."""

    def sketch(self, key: str) -> Sketch | None: ...

    def category(self, product: str) -> str | None: ...


class Model:
    """Every key's sketch in one process: the learner and the catalog of ``kairos replay``
    (and of each live worker's own keys, ``agents/products.py``)."""

    def __init__(self, cfg: RecommendConfig) -> None:
        self.cfg = cfg
        self.sketches: OrderedDict[str, Sketch] = OrderedDict()
        # product -> category: the items of the category sketches, so bounded with them
        self.categories: dict[str, str] = {}

    def learn(self, observations: Iterable[Observation]) -> set[str]:
        """Apply observations; returns the keys changed."""
        changed = set()
        for key, item, logw in observations:
            self.apply(key, item, logw)
            changed.add(key)
        return changed

    def apply(self, key: str, item: str, logw: float) -> None:
        sketches = self.sketches
        sketch = sketches.get(key)
        if sketch is None:
            sketch = sketches[key] = {}
            while len(sketches) > self.cfg.max_products:
                self._forget(*sketches.popitem(last=False))
        else:
            sketches.move_to_end(key)
        if key[:1] == CATEGORY:
            evicted = add(sketch, item, logw, self.cfg.related * 5)
            if evicted is not None:
                self.categories.pop(evicted, None)
            self.categories[item] = key[1:]
        else:
            add(sketch, item, logw, self.cfg.related)

    def _forget(self, key: str, sketch: Sketch) -> None:
        if key[:1] == CATEGORY:
            for item in sketch:
                if self.categories.get(item) == key[1:]:
                    del self.categories[item]

    def sketch(self, key: str) -> Sketch | None:
        return self.sketches.get(key)

    def category(self, product: str) -> str | None:
        return self.categories.get(product)

    def load(self, key: str, sketch: Sketch | None) -> None:
        """Take a published key's sketch (``None``: gone), as another worker kept it."""
        old = self.sketches.pop(key, None)
        if old is not None:
            self._forget(key, old)
        if sketch is not None:
            self.sketches[key] = dict(sketch)
            while len(self.sketches) > self.cfg.max_products:
                self._forget(*self.sketches.popitem(last=False))
            if key[:1] == CATEGORY:
                for item in sketch:
                    self.categories[item] = key[1:]


# --- the process's catalog and learner -------------------------------------------------------

Learner = Callable[[list[Observation]], object]  # takes one event's observations


class _Installed:
    catalog: Catalog | None = None
    learner: Learner | None = None


CATALOG = _Installed()


@contextmanager
def using(catalog: Catalog | None, learner: Learner | None) -> Iterator[None]:
    """Install a catalog and a learner for the duration (replay, tests)."""
    before = CATALOG.catalog, CATALOG.learner
    CATALOG.catalog, CATALOG.learner = catalog, learner
    try:
        yield
    finally:
        CATALOG.catalog, CATALOG.learner = before


def install(catalog: Catalog | None, learner: Learner | None) -> None:
    """Install for the life of the process (the live worker)."""
    CATALOG.catalog, CATALOG.learner = catalog, learner


# --- the customer side: observations and recommendations ------------------------------------

LEARN_EVENTS = frozenset({"product_view", "order_placed"})


def observe(state: CustomerState, ev: Event, cfg: RecommendConfig, late: bool) -> list[Observation]:
    """What one event of a customer teaches (after ``core.facts`` applied it)."""
    out: list[Observation] = []
    half_life = cfg.half_life
    if ev.type == "product_view":
        product = ev.product_id
        if product is None or late:  # a late view is not in the recent views
            return out
        one = log_weight(1.0, ev.ts, half_life)
        if ev.category:
            out.append((CATEGORY + ev.category, product, one))
        # A pair counts once per window: a view of a product already viewed within the
        # window adds no pair (its pairs with what came between were counted then).
        partners: list[str] = []
        since, event_id = ev.ts - cfg.co_window, ev.event_id
        for view in reversed(state.views):  # newest first; views are kept in time order
            at = view[VIEW_TS]
            if at < since:
                break
            other = view[VIEW_PRODUCT]
            if other == product:
                if view[VIEW_EVENT] != event_id:
                    return out
            elif other not in partners and len(partners) < _PARTNERS:
                partners.append(other)
        for other in partners:
            out.append((other, product, one))
            out.append((product, other, one))
    elif ev.type == "order_placed":
        items = sorted({item.product_id for item in ev.items})
        weight = log_weight(cfg.purchase_weight, ev.ts, half_life)
        for a in items:
            for b in items:
                if a != b:
                    out.append((a, b, weight))
    return out


def on_event(ctx: Ctx, ev: Event, cfg: RecommendConfig, late: bool) -> None:
    """The engine's learning hook (bound by ``core.hooks`` when ``recommend.enabled``)."""
    state = ctx.state
    if ev.type == "order_placed" and ev.items:
        bought: list[str] = state.recs.setdefault("b", [])
        for item in ev.items:
            if item.product_id in bought:
                bought.remove(item.product_id)
            bought.append(item.product_id)
        del bought[:-_BOUGHT]
    learner = CATALOG.learner
    if learner is not None:
        observations = observe(state, ev, cfg, late)
        if observations:
            learner(observations)


def bought(state: CustomerState) -> list[str]:
    """The products the customer bought lately (newest last)."""
    return list(state.recs.get("b", ()))


def recommend(
    seeds: Iterable[str],
    exclude: Iterable[str],
    n: int,
    categories: Iterable[str | None] = (),
    catalog: Catalog | None = None,
) -> list[str]:
    """Up to ``n`` products related to ``seeds``, none in ``exclude``; topped up with the most
    viewed of the seeds' categories (and ``categories``) when the seeds know too few."""
    catalog = catalog if catalog is not None else CATALOG.catalog
    if catalog is None or n <= 0:
        return []
    seeds = list(dict.fromkeys(seeds))
    skip = set(exclude) | set(seeds)
    seeds = seeds[:_SEEDS]
    scored = _combine((catalog.sketch(s) for s in seeds), skip)
    picked = [item for item, _ in scored[:n]]
    if len(picked) < n:
        cats = [*(catalog.category(s) for s in seeds), *categories]
        skip |= set(picked)
        popular = _combine((catalog.sketch(CATEGORY + c) for c in dict.fromkeys(cats) if c), skip)
        picked += [item for item, _ in popular[: n - len(picked)]]
    return picked


def _combine(sketches: Iterable[Sketch | None], skip: set[str]) -> list[tuple[str, float]]:
    """Items of several sketches by their summed counts (relative to the largest), best first."""
    present = [s for s in sketches if s]
    if not present:
        return []
    top = max(max(s.values()) for s in present)
    totals: dict[str, float] = {}
    for sketch in present:
        for item, logc in sketch.items():
            if item not in skip:
                totals[item] = totals.get(item, 0.0) + 2.0 ** (logc - top)
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def for_payload(
    ctx: Ctx, seeds: Iterable[str], exclude: Iterable[str], categories: Iterable[str | None] = ()
) -> list[str] | None:
    """``payload.recommended`` for a decision, or None when recommendations are off."""
    cfg = ctx.cfg.recommend
    if not cfg.enabled:
        return None
    state = ctx.state
    skip = {*exclude, *state.cart, *bought(state)}
    return recommend(seeds, skip, cfg.count, categories)
