"""Counters and histograms for the worker's per-event path, without prometheus_client's lock.

prometheus_client guards every value with a lock, since any thread may update it: an
``inc`` costs ~0.9 us and a histogram's ``observe`` ~2 us, which was ~6% of a worker's
time per event (bench/FINDINGS.md). The runtime updates its metrics from the event
loop's thread alone, and ``/metrics`` is served from that thread too (monitoring/http.py),
so these keep plain numbers and are read as any collector is, through ``collect()``.
The exposition is the same as prometheus_client's: ``_total`` and ``_created`` for a
counter; ``_bucket``, ``_count``, ``_sum`` and ``_created`` for a histogram.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class Count:
    """One counter series."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount


class Buckets:
    """One histogram series: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds  # upper bounds, +Inf last
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1  # le: amount <= bound
        self.sum += amount


class LoopMetric:
    """Series by label values, registered as a collector."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._name = name  # a counter's family drops "_total" itself
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], Count | Buckets] = {}
        if not self._labelnames:  # as prometheus_client: an unlabelled series exists at 0
            self._child(())
        if registry is not None:
            registry.register(self)

    def _child(self, values: tuple[str, ...]) -> Count | Buckets:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self._labelnames):
                raise ValueError(f"{self._name}: labels {self._labelnames}, given {values}")
            series = self._series[values] = self._new()
        return series

    def _new(self) -> Count | Buckets:
        raise NotImplementedError

    def _family(self) -> Metric:
        raise NotImplementedError

    def _add(self, family: Metric, values: tuple[str, ...], series: Any) -> None:
        raise NotImplementedError

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for values, series in list(self._series.items()):
            self._add(family, values, series)
        yield family


class LoopCounter(LoopMetric):
    def labels(self, *values: str) -> Count:
        return self._child(tuple(str(v) for v in values))  # type: ignore[return-value]

    def inc(self, amount: float = 1.0) -> None:
        self._child(()).inc(amount)  # type: ignore[union-attr]

    def _new(self) -> Count:
        return Count()

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def _add(self, family: Metric, values: tuple[str, ...], series: Count) -> None:
        add = family.add_metric  # type: ignore[attr-defined]  # CounterMetricFamily's
        add(values, series.value, created=series.created)


class LoopHistogram(LoopMetric):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self._bounds = bounds
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: str) -> Buckets:
        return self._child(tuple(str(v) for v in values))  # type: ignore[return-value]

    def observe(self, amount: float) -> None:
        self._child(()).observe(amount)  # type: ignore[union-attr]

    def _new(self) -> Buckets:
        return Buckets(self._bounds)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def _add(self, family: Metric, values: tuple[str, ...], series: Buckets) -> None:
        cumulative, buckets = 0, []
        for bound, count in zip(self._bounds, series.counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        family.add_metric(list(values), buckets, series.sum)  # type: ignore[attr-defined]
        labels = dict(zip(self._labelnames, values, strict=True))
        family.samples.append(Sample(self._name + "_created", labels, series.created))
