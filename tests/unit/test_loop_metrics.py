"""The loop's lock-free metrics expose exactly what prometheus_client's would."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from monitoring.loop_metrics import LoopCounter, LoopHistogram


def _exposition(registry: CollectorRegistry) -> str:
    text = generate_latest(registry).decode()
    return re.sub(r"_created(\{[^}]*\})? \S+", r"_created\1 T", text)  # creation times differ


def _use(registry: CollectorRegistry, counter: type, histogram: type) -> None:
    c = counter("kairos_things_total", "Things.", ["topic", "type"], registry=registry)
    c.labels("orders", "order_placed").inc()
    c.labels("orders", "order_placed").inc(2.5)
    c.labels("clickstream", "page_view").inc()
    counter("kairos_untouched_total", "Never incremented.", registry=registry)
    h = histogram("kairos_wait_seconds", "Waits.", buckets=(0.1, 1.0), registry=registry)
    for amount in (0.05, 0.1, 0.5, 1.0, 7.0):  # on a bound counts in that bucket (le)
        h.observe(amount)
    lag = histogram("kairos_lag_seconds", "Lag.", ["trigger"], buckets=(0.01,), registry=registry)
    lag.labels("cart").observe(0.02)
    lag.labels("browse").observe(0.0)


def test_same_exposition_as_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    _use(ours, LoopCounter, LoopHistogram)
    _use(theirs, Counter, Histogram)
    assert _exposition(ours) == _exposition(theirs)
    value = ours.get_sample_value("kairos_wait_seconds_bucket", {"le": "1.0"})
    assert value == 4


def test_wrong_labels_and_negative_increments_are_refused() -> None:
    c = LoopCounter("kairos_x_total", "X.", ["a"], registry=None)
    with pytest.raises(ValueError):
        c.labels("one", "two")
    with pytest.raises(ValueError):
        c.labels("one").inc(-1)
