"""The dispatcher's settings, read from the environment in this one place.

==============================  ====================================================
KAIROS_DISPATCHER_METRICS_PORT  ``/metrics``, ``/health``, ``/ready`` (``9101``; 0 off)
KAIROS_CHANNEL_OVERRIDE         send every message through this channel (``console``
                                for the demo); policy still uses the action's channel
KAIROS_CHANNEL_CONCURRENCY      concurrent sends per channel (``16``)
KAIROS_CIRCUIT_FAILURES         consecutive failures that open a channel's circuit (``5``)
KAIROS_CIRCUIT_COOLDOWN         seconds before a half-open probe (``30``)
KAIROS_DISPATCH_TICK            seconds between looks at the schedule (``0.1``)
KAIROS_DISPATCH_MAX_INFLIGHT    entries being delivered at once per process (``1000``)
KAIROS_DISPATCH_LEASE           seconds an entry stays with its dispatcher without a
                                renewal (``10``; renewed every third of it): a
                                killed dispatcher's entries come back after about this
KAIROS_DISPATCH_DRAIN           seconds a SIGTERM waits for sends in progress (``10``)
KAIROS_DELIVERY_GIVE_UP_AFTER   seconds after its decision that an action whose provider is
                                down stops being retried and is recorded ``dead`` (``21600``)
KAIROS_DELIVERY_MAX_ATTEMPTS    attempts per message and round (``5``)
KAIROS_DELIVERY_BASE_DELAY      first retry's backoff cap, seconds (``0.5``)
KAIROS_DELIVERY_MAX_DELAY       largest backoff, seconds (``30``)
KAIROS_DELIVERY_TIMEOUT         timeout of one attempt, seconds (``10``)
==============================  ====================================================

plus each provider's endpoint and credentials (``channels/providers/settings.py``).

Redis: one client shared by every delivery, on a ``BlockingConnectionPool`` of
``max_inflight`` + ``REDIS_POOL_SPARE`` connections (``redis_pool_size``); a caller that
finds it exhausted waits (up to ``REDIS_POOL_WAIT_S``) instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from channels.resilience import RetryPolicy

REDIS_POOL_SPARE = 32  # connections beyond one per delivery: intake, leases, config, contacts
REDIS_POOL_WAIT_S = 10.0


class DispatchSettingsError(ValueError):
    """A dispatcher setting from the environment that cannot be used."""


def _number(env: Mapping[str, str], name: str, default: str) -> float:
    raw = env.get(name, "").strip() or default
    try:
        return float(raw)
    except ValueError:
        raise DispatchSettingsError(f"{name} must be a number, got {raw!r}") from None


def _seconds(env: Mapping[str, str], name: str, default: str, *, zero_ok: bool) -> float:
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 or (zero_ok and value == 0)):
        bound = ">= 0" if zero_ok else "> 0"
        raise DispatchSettingsError(f"{name} must be a number of seconds {bound}, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    metrics_port: int = 9101
    channel_override: str = ""
    concurrency: int = 16
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    tick_s: float = 0.1
    max_inflight: int = 1000
    lease_s: float = 10.0
    drain_s: float = 10.0
    give_up_after_s: float = 6 * 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DispatchSettings:
        e = os.environ if env is None else env
        return cls(
            metrics_port=int(e.get("KAIROS_DISPATCHER_METRICS_PORT", "9101")),
            channel_override=e.get("KAIROS_CHANNEL_OVERRIDE", "").strip(),
            concurrency=int(e.get("KAIROS_CHANNEL_CONCURRENCY", "16")),
            circuit_failures=int(e.get("KAIROS_CIRCUIT_FAILURES", "5")),
            circuit_cooldown_s=float(e.get("KAIROS_CIRCUIT_COOLDOWN", "30")),
            tick_s=float(e.get("KAIROS_DISPATCH_TICK", "0.1")),
            max_inflight=int(e.get("KAIROS_DISPATCH_MAX_INFLIGHT", "1000")),
            lease_s=_seconds(e, "KAIROS_DISPATCH_LEASE", "10", zero_ok=False),
            drain_s=_seconds(e, "KAIROS_DISPATCH_DRAIN", "10", zero_ok=True),
            give_up_after_s=_seconds(e, "KAIROS_DELIVERY_GIVE_UP_AFTER", "21600", zero_ok=True),
        )

    @property
    def lease_ms(self) -> int:
        return int(self.lease_s * 1000)


def redis_pool_size(settings: DispatchSettings) -> int:
    """Every delivery in flight may hold one Redis connection at a time, plus the rest."""
    return settings.max_inflight + REDIS_POOL_SPARE


def retry_policy_from_env(env: Mapping[str, str] | None = None) -> RetryPolicy:
    """The delivery RetryPolicy from the ``KAIROS_DELIVERY_*`` variables."""
    e = os.environ if env is None else env
    try:
        return RetryPolicy(
            max_attempts=int(_number(e, "KAIROS_DELIVERY_MAX_ATTEMPTS", "5")),
            base_delay_s=_number(e, "KAIROS_DELIVERY_BASE_DELAY", "0.5"),
            max_delay_s=_number(e, "KAIROS_DELIVERY_MAX_DELAY", "30"),
            attempt_timeout_s=_number(e, "KAIROS_DELIVERY_TIMEOUT", "10"),
        )
    except DispatchSettingsError:
        raise
    except ValueError as exc:  # RetryPolicy's own bounds
        raise DispatchSettingsError(f"KAIROS_DELIVERY_*: {exc}") from None
