"""Recommendations: the decayed space-saving sketch against exact counts, the model's
bounds, what a customer's events teach, and ``payload.recommended`` in the triggers."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest

from core import recommend
from core.config import Config, RecommendConfig
from core.config_file import ConfigError, parse_config
from core.driver import Driver, Outputs
from core.durations import DAY, HOUR, MINUTE
from core.model import CustomerState, Event, Item
from core.recommend import CATEGORY, Model, add, log_weight, observe
from core.templates import render
from kairos.replay.shards import run_replay
from kairos.simulate import generate

T0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z
_ids = count(1)
RCFG = replace(RecommendConfig(), enabled=True)


def ev(etype: str, ts: int, cid: str = "c1", **fields: Any) -> Event:
    return Event(f"e{next(_ids)}", etype, cid, ts, **fields)


def view(ts: int, product: str, cid: str = "c1", category: str = "shoes") -> Event:
    return ev("product_view", ts, cid, product_id=product, category=category)


# --- the sketch -----------------------------------------------------------------------------------


def test_sketch_equals_exact_decayed_counts_when_it_has_room() -> None:
    rng = random.Random(1)
    half_life = 7 * DAY
    sketch: dict[str, float] = {}
    exact: Counter[str] = Counter()
    for _ in range(2000):
        item, ts = f"p{rng.randrange(30)}", T0 + rng.randrange(60 * DAY)
        w = rng.choice((1.0, 3.0))
        add(sketch, item, log_weight(w, ts, half_life), capacity=30)
        exact[item] += w * 2 ** ((ts - T0) / half_life)  # the same decay, from T0
    base = T0 / half_life
    for item, value in exact.items():
        assert math.isclose(2 ** (sketch[item] - base), value, rel_tol=1e-9)


def test_sketch_keeps_the_heavy_hitters_in_little_room() -> None:
    rng = random.Random(2)
    sketch: dict[str, float] = {}
    exact: Counter[str] = Counter()
    items = [f"p{i}" for i in range(500)]
    weights = [1 / (i + 1) ** 1.2 for i in range(500)]  # Zipf-like
    for item in rng.choices(items, weights, k=20_000):
        add(sketch, item, 0.0, capacity=20)  # weight 1, no decay (same ts)
        exact[item] += 1
    assert len(sketch) == 20
    kept = sorted(sketch, key=lambda i: -sketch[i])
    assert kept[:5] == [item for item, _ in exact.most_common(5)]
    floor = min(2**v for v in sketch.values())
    for item in sketch:  # space-saving: never under, over by at most the smallest count
        assert exact[item] <= 2 ** sketch[item] + 1e-6 <= exact[item] + floor + 1e-6


def test_a_recent_count_outranks_an_older_larger_one() -> None:
    half_life = 7 * DAY
    sketch: dict[str, float] = {}
    for _ in range(10):
        add(sketch, "old", log_weight(1.0, T0, half_life), 20)
    for _ in range(3):
        add(sketch, "new", log_weight(1.0, T0 + 2 * half_life, half_life), 20)
    assert sketch["new"] > sketch["old"]  # 3 against 10 / 4 = 2.5


def test_model_is_bounded_in_total_least_recently_updated_first() -> None:
    model = Model(replace(RCFG, max_products=5, related=3))
    for i in range(20):
        for j in range(10):
            model.apply(f"p{i}", f"q{j}", float(j))
    assert list(model.sketches) == [f"p{i}" for i in range(15, 20)]
    assert all(len(s) == 3 for s in model.sketches.values())
    model.apply("#shoes", "p1", 0.0)
    assert model.category("p1") == "shoes" and len(model.sketches) == 5


# --- what a customer's events teach ------------------------------------------------------------


def test_views_close_together_are_co_views() -> None:
    state = CustomerState("c1")
    state.views = [[T0, "a", "shoes", "e1"], [T0 + 2 * HOUR, "b", "shoes", "e2"]]
    now = view(T0 + 2 * HOUR + MINUTE, "c")
    state.views.append([now.ts, "c", "shoes", now.event_id])
    got = {(k, i) for k, i, _ in observe(state, now, RCFG, late=False)}
    assert got == {("#shoes", "c"), ("b", "c"), ("c", "b")}  # "a" is 2 h before: too far
    assert observe(state, now, RCFG, late=True) == []


def test_an_order_teaches_co_purchases_at_their_weight() -> None:
    order = ev("order_placed", T0, items=(Item("a"), Item("b"), Item("a")), total=9.0, order_id="o")
    got = observe(CustomerState("c1"), order, RCFG, late=False)
    assert {(k, i) for k, i, _ in got} == {("a", "b"), ("b", "a")}
    assert got[0][2] == log_weight(RCFG.purchase_weight, T0, RCFG.half_life)


# --- recommending ---------------------------------------------------------------------------------


def trained() -> Model:
    model = Model(RCFG)
    for k, i, w in [("a", "b", 5.0), ("a", "c", 3.0), ("a", "d", 1.0), ("b", "c", 4.0)]:
        model.apply(k, i, math.log2(w))
    for item, w in [("z", 9.0), ("y", 7.0), ("b", 1.0), ("a", 0.5)]:
        model.apply("#shoes", item, math.log2(w))
    return model


def test_recommend_ranks_by_summed_counts_and_excludes() -> None:
    model = trained()
    assert recommend.recommend(["a"], (), 3, catalog=model) == ["b", "c", "d"]
    assert recommend.recommend(["a", "b"], (), 2, catalog=model) == ["c", "d"]  # seeds not shown
    assert recommend.recommend(["a"], ["b"], 2, catalog=model) == ["c", "d"]


def test_cold_start_falls_back_to_the_category_most_viewed() -> None:
    model = trained()
    assert recommend.recommend(["new"], (), 3, ["shoes"], catalog=model) == ["z", "y", "b"]
    assert recommend.recommend(["a"], ["c"], 3, catalog=model) == ["b", "d", "z"]  # a's category
    assert recommend.recommend(["new"], (), 3, catalog=model) == []


# --- through the engine ---------------------------------------------------------------------------


def config(*on: str, **recommend_settings: Any) -> Config:
    base = Config()
    triggers = {n: replace(t, enabled=n in on) for n, t in base.triggers.items()}
    return replace(base, triggers=triggers, recommend=replace(RCFG, **recommend_settings))


def crowd(driver: Driver) -> None:
    """Other customers who looked at p1 also looked at p2 and p3, and bought p1 with p4."""
    t = T0 - 10 * DAY
    for i in range(20):
        cid = f"o{i}"
        driver.send(view(t + i * HOUR, "p1", cid))
        driver.send(view(t + i * HOUR + MINUTE, "p2" if i % 3 else "p3", cid))
        items = (Item("p1", 1, 10.0), Item("p4", 1, 10.0))
        driver.send(
            ev("order_placed", t + i * HOUR + 2 * MINUTE, cid, order_id=f"x{i}", items=items)
        )
    for i in range(5):
        driver.send(view(t + DAY + i, "p9", f"v{i}", category="bags"))


def run(cfg: Config, events: list[Event], until: int) -> Outputs:
    out = Outputs()
    model = Model(cfg.recommend)
    with recommend.using(model, model.learn):
        driver = Driver(cfg, out)
        crowd(driver)
        for e in events:
            driver.send(e)
        driver.advance(until)
    return out


def test_browse_abandonment_recommends_what_others_viewed_with_it() -> None:
    out = run(config("browse_abandonment"), [view(T0, "p1"), view(T0 + MINUTE, "p1")], T0 + DAY)
    (d,) = out.decisions
    assert d.payload["recommended"] == ["p4", "p2", "p3"]  # p4: bought with p1 (weight 3)


def test_abandoned_cart_never_recommends_what_is_in_the_cart_or_bought() -> None:
    events = [
        ev("order_placed", T0 - DAY, order_id="mine", items=(Item("p2", 1, 5.0),), total=5.0),
        view(T0, "p1"),
        ev("add_to_cart", T0 + MINUTE, product_id="p1", quantity=1, price=10.0),
        ev("add_to_cart", T0 + 2 * MINUTE, product_id="p4", quantity=1, price=10.0),
    ]
    out = run(config("abandoned_cart", count=5), events, T0 + DAY)
    (d,) = [d for d in out.decisions if d.trigger == "abandoned_cart"]
    assert d.payload["recommended"][0] == "p3"
    assert not {"p1", "p4", "p2"} & set(d.payload["recommended"])
    text = render("Also for you: {recommended}", d.payload)
    assert text == "Also for you: " + ", ".join(d.payload["recommended"])


def test_post_purchase_recommends_from_what_was_bought() -> None:
    events = [
        ev("order_placed", T0, order_id="o1", items=(Item("p1", 1, 10.0),), total=10.0),
        ev("order_paid", T0 + MINUTE, order_id="o1"),
    ]
    out = run(config("post_purchase"), events, T0 + 5 * DAY)
    (d,) = out.decisions
    assert d.payload["recommended"] == ["p4", "p2", "p3"]


def test_a_new_product_gets_its_category_most_viewed() -> None:
    events = [view(T0, "p-new", category="bags"), view(T0 + MINUTE, "p-new", category="bags")]
    out = run(config("browse_abandonment"), events, T0 + DAY)
    (d,) = out.decisions
    assert d.payload["recommended"] == ["p9"]


def test_recommend_off_leaves_payloads_and_state_as_they_were() -> None:
    cfg = replace(config("browse_abandonment"), recommend=RecommendConfig())
    out = Outputs()
    driver = Driver(cfg, out)
    driver.send(view(T0, "p1"))
    driver.send(view(T0 + MINUTE, "p1"))
    driver.advance(T0 + DAY)
    (d,) = out.decisions
    assert "recommended" not in d.payload and driver.state("c1").recs == {}


def test_every_model_key_is_bounded_by_related() -> None:
    model = Model(replace(RCFG, related=4))
    with recommend.using(model, model.learn):
        driver = Driver(config(related=4), Outputs())
        for i in range(300):
            driver.send(view(T0 + i * MINUTE, f"p{i % 37}", f"c{i % 7}"))
    assert max(len(s) for k, s in model.sketches.items() if not k.startswith(CATEGORY)) <= 4
    assert len(model.sketches[CATEGORY + "shoes"]) <= 20


def test_replay_learns_on_one_process_whatever_jobs_says(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with open(path, "wb") as out:
        for topic, key, value in generate(400, 12_000, 5, T0, 3 * DAY):
            record = {"topic": topic, "customer_id": key, "value": value}
            out.write(orjson.dumps(record if topic == "profiles" else value) + b"\n")
    cfg = config("browse_abandonment", "abandoned_cart", "post_purchase")
    one, two = (run_replay([path], [cfg], jobs=j, keep_decisions=True)[0] for j in (1, 2))
    assert one.decisions is not None and two.decisions is not None
    with_recs = [d.payload["recommended"] for d in one.decisions if d.payload.get("recommended")]
    assert len(with_recs) > 0.9 * len(one.decisions) > 50
    assert [d.to_record() for d in one.decisions] == [d.to_record() for d in two.decisions]


def test_a_pair_counts_once_per_window() -> None:
    state = CustomerState("c1")
    got = []
    for i, product in enumerate(["a", "b", "a", "b", "c"]):
        e = view(T0 + i * MINUTE, product)
        state.views.append([e.ts, product, "shoes", e.event_id])
        got.append(sorted((k, i) for k, i, _ in observe(state, e, RCFG, late=False)))
    assert got == [
        [("#shoes", "a")],
        [("#shoes", "b"), ("a", "b"), ("b", "a")],
        [("#shoes", "a")],  # a again: a-b was counted
        [("#shoes", "b")],
        [("#shoes", "c"), ("a", "c"), ("b", "c"), ("c", "a"), ("c", "b")],
    ]


def test_settings_that_would_break_the_arithmetic_are_refused_with_file_and_line() -> None:
    text = "recommend:\n  enabled: true\n  half_life: 0s\n  purchase_weight: 0\n  count: 0\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, "r.yaml")
    assert str(err.value).splitlines() == [
        "r.yaml:3: recommend.half_life: expected a duration above 0 like 7d, got '0s'",
        "r.yaml:4: recommend.purchase_weight: expected a number above 0, got 0",
        "r.yaml:5: recommend.count: expected a whole number of 1 or more, got 0",
    ]
