"""Every Prometheus metric of Kairos, declared once.

Conventions: prefix ``kairos_``, ``_total`` counters, ``_seconds`` histograms in
base units, and label values from small fixed sets (topic, event type, reason,
trigger, status, channel, outcome, stage, partition): never a customer id.
The worker's runtime updates its metrics on every event, from the event loop alone:
those are ``LoopCounter`` and ``LoopHistogram`` (monitoring/loop_metrics.py), which
skip prometheus_client's per-update lock and expose the same series.
"""

from __future__ import annotations

import contextlib
import platform
from importlib import metadata

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info

from monitoring.loop_metrics import LoopCounter, LoopHistogram

# Milliseconds to minutes: decisions should take ms, delayed deliveries minutes.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
# Per-event processing is microseconds to milliseconds.
PROCESSING_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.05,
    0.25,
)

# --- input ---------------------------------------------------------------
EVENTS_CONSUMED = LoopCounter(
    "kairos_events_consumed_total", "Input records consumed.", ["topic", "type"]
)
EVENTS_INVALID = LoopCounter(
    "kairos_events_invalid_total", "Input records rejected by validation.", ["topic", "reason"]
)
DEAD_LETTERS = LoopCounter(
    "kairos_dead_letters_total", "Records written to the dead-letters topic.", ["topic"]
)
DUPLICATES_DROPPED = LoopCounter(
    "kairos_duplicates_dropped_total", "Events skipped because their event_id was seen.", ["topic"]
)
LATE_EVENTS = LoopCounter(
    "kairos_late_events_total",
    "Events older than the window grace; counted in the oldest window still open.",
    ["topic"],
)
PROCESSING_SECONDS = LoopHistogram(
    "kairos_event_processing_seconds",
    "CPU time of the core per event batch, divided per event.",
    buckets=PROCESSING_BUCKETS,
)
DECISION_LAG_SECONDS = LoopHistogram(
    "kairos_decision_lag_seconds",
    "Wall-clock now minus the event time of the event that caused a decision.",
    ["trigger"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "kairos_consumer_lag_messages", "High watermark minus committed offset.", ["topic", "partition"]
)

# --- decisions and journey ------------------------------------------------
DECISIONS = LoopCounter(
    "kairos_decisions_total", "Decisions made, by trigger and status.", ["trigger", "status"]
)
STAGE_CHANGES = LoopCounter(
    "kairos_stage_changes_total", "Journey stage transitions.", ["from_stage", "to_stage"]
)
CUSTOMERS_BY_STAGE = Gauge(
    "kairos_customers", "Customers held by this worker, by journey stage.", ["stage"]
)

# --- audiences and lead scores (core.segments) --------------------------------
CUSTOMERS_IN_AUDIENCE = Gauge(
    "kairos_customers_in_audience",
    "Customers held by this worker inside each watched audience (segment triggers).",
    ["audience"],
)
SEGMENT_CHANGES = LoopCounter(
    "kairos_segment_changes_total",
    "Entries into and exits from watched audiences; lead qualifications and cool-downs.",
    ["kind", "name", "change"],
)
MQLS = LoopCounter(
    "kairos_mqls_total", "lead_qualified decisions, by the owner they went to.", ["owner"]
)

# --- timers ---------------------------------------------------------------
TIMERS_PENDING = Gauge("kairos_timers_pending", "Pending timers in this worker's index.")
PARTITIONS_CATCHING_UP = Gauge(
    "kairos_partitions_catching_up",
    "Assigned partitions with input not handled yet (their timers fire on event time).",
)
TIMERS_FIRED = LoopCounter("kairos_timers_fired_total", "Timers fired, by kind.", ["kind"])
TIMER_LATENESS_SECONDS = LoopHistogram(
    "kairos_timer_lateness_seconds",
    "Wall-clock time a timer fired minus its due time (after grace).",
    buckets=LATENCY_BUCKETS,
)

# --- delivery -------------------------------------------------------------
DELIVERIES = Counter(
    "kairos_deliveries_total", "Delivery outcomes, by channel.", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "kairos_delivery_seconds",
    "Time from decision to final delivery outcome, by channel.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
DELIVERY_RETRIES = Counter("kairos_delivery_retries_total", "Delivery retries.", ["channel"])
DELIVERIES_RESENT = Counter(
    "kairos_deliveries_resent_total",
    "Sends repeated because a stopped dispatcher may have sent them already, by channel.",
    ["channel"],
)
CIRCUIT_OPEN = Gauge(
    "kairos_circuit_open", "1 while the channel's circuit breaker is open.", ["channel"]
)
CONVERSIONS = LoopCounter(
    "kairos_conversions_total",
    "Orders attributed to a trigger, by group (sent or held_out).",
    ["trigger", "group"],
)
CONVERSION_REVENUE = LoopCounter(
    "kairos_conversion_revenue_total",
    "Revenue of attributed orders, by trigger and group.",
    ["trigger", "group"],
)

# --- experiments and money (core.variants, core.roi) -------------------------
VARIANT_DECISIONS = LoopCounter(
    "kairos_variant_decisions_total",
    "Decisions of triggers with variants, by trigger, variant (from the config) and status.",
    ["trigger", "variant", "status"],
)
VARIANT_CONVERSIONS = LoopCounter(
    "kairos_variant_conversions_total",
    "Orders attributed to a trigger's variant, by group (sent or held_out).",
    ["trigger", "variant", "group"],
)
VARIANT_CONVERSION_REVENUE = LoopCounter(
    "kairos_variant_conversion_revenue_total",
    "Revenue of orders attributed to a trigger's variant, by group.",
    ["trigger", "variant", "group"],
)
MESSAGE_COST = LoopCounter(
    "kairos_message_cost_total",
    "Cost of the messages decided to send (costs: in the config, per channel), by trigger.",
    ["trigger", "channel"],
)
CONVERSION_DISCOUNT = LoopCounter(
    "kairos_conversion_discount_total",
    "What redeemed offer codes took off attributed orders, by trigger.",
    ["trigger"],
)

DISPATCH_QUEUE = Gauge(
    "kairos_dispatch_queue",
    "Actions in the dispatcher's Redis schedule: due (waiting to be delivered now) or "
    "scheduled (deferred for quiet hours or a frequency cap, or under a delivery lease).",
    ["state"],
)

# --- control plane and dependencies ---------------------------------------
CONFIG_RELOADS = Counter(
    "kairos_config_reloads_total", "Config reload attempts, by result.", ["result"]
)
CONFIG_GENERATION = Gauge("kairos_config_generation", "Generation of the active config.")
STATE_ERRORS = Counter(
    "kairos_state_errors_total", "Table / changelog errors, by operation.", ["operation"]
)
REDIS_ERRORS = Counter("kairos_redis_errors_total", "Redis errors, by operation.", ["operation"])
STATE_FLUSHES = Counter(
    "kairos_state_flushed_total", "Customer states written to the table changelog."
)


# Series only a worker has: on the dispatcher they would sit at 0 and read as "fine".
WORKER_ONLY = (
    PROCESSING_SECONDS,
    TIMERS_PENDING,
    PARTITIONS_CATCHING_UP,
    TIMER_LATENESS_SECONDS,
    STATE_FLUSHES,
    STATE_ERRORS,
)


def start_error_series(worker: bool = True) -> None:
    """Create the error counters' series at 0, so ``increase()`` sees their first error.

    A labelled counter has no series until first used; an alert on
    ``increase(x[15m]) > 0`` would then miss the very first failure. A dispatcher
    (``worker=False``) serves none of the worker-only series.
    """
    if worker:
        STATE_ERRORS.labels("flush")
        STATE_ERRORS.labels("outputs")
    else:
        for collector in WORKER_ONLY:
            with contextlib.suppress(KeyError):  # already gone (called twice)
                REGISTRY.unregister(collector)
    CONFIG_RELOADS.labels("failure")
    for operation in ("config_read", "config_subscribe", "schedule", "contacts"):
        REDIS_ERRORS.labels(operation)


# --- build ------------------------------------------------------------------
BUILD_INFO = Info("kairos_build", "The running Kairos: version, Python and Faust (value 1).")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.info(
    {
        "version": _version("kairos"),
        "python": platform.python_version(),
        "faust": _version("faust-streaming"),
    }
)
