"""Retries, circuit breaking and bounded concurrency around any Channel.

``deliver`` sends one message and returns the contract's ``deliveries`` record:

- ``delivered``: a send succeeded.
- ``failed``: the provider rejected this message (DeliveryError with retryable=False:
  4xx, unknown recipient, bad credentials). One attempt; retrying would fail the same way.
- ``retrying``: an attempt failed and another will follow. Only passed to ``on_retry``
  (so the caller can publish it); never the return value.
- ``dead``: gave up on a retryable failure: the last allowed attempt failed, or the
  channel's circuit is open (``error`` starts with ``circuit open``; ``attempts`` may be 0).
  The message was not delivered and may be retried later by whoever owns it.

Metrics: ``kairos_deliveries_total{channel,outcome}`` counts final outcomes only (one per
``deliver`` call); ``kairos_delivery_retries_total`` counts each retry;
``kairos_delivery_seconds`` observes decision (``Message.created_at``) to final outcome;
``kairos_circuit_open`` is 1 while a channel's breaker is open.

``before_send`` is called with the channel's slot held, right before each provider call:
the dispatcher marks the attempt in its ledger there, and no earlier, so an action that
waited for a slot when its dispatcher died was never marked (see ``channels.idempotency``).
It may raise to call the send off; the exception propagates out of ``deliver``.

``until_redis_answers`` retries a Redis call until it succeeds: for writes that must not
be lost, such as the outcome of a send that already happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

import redis

from channels.deliveries import ProviderOutcome
from channels.providers.base import Channel, DeliveryError, Message
from monitoring.metrics import (
    CIRCUIT_OPEN,
    DELIVERIES,
    DELIVERY_RETRIES,
    DELIVERY_SECONDS,
    REDIS_ERRORS,
)

log = logging.getLogger(__name__)

OnRetry = Callable[["DeliveryOutcome"], Awaitable[None] | None]
BeforeSend = Callable[[], Awaitable[None]]
T = TypeVar("T")

REDIS_RETRY_MAX_S = 5.0


async def until_redis_answers(operation: str, call: Callable[[], Awaitable[T]]) -> T:
    """Retry ``call`` while Redis is unreachable (or its pool busy), counting each failure.

    Used where giving up would lose something: an action read from Kafka that is not yet
    queued (its offset must not be committed), the outcome of a send that happened.
    """
    delay = 0.1
    while True:
        try:
            return await call()
        except (redis.RedisError, OSError) as exc:
            REDIS_ERRORS.labels(operation).inc()
            log.warning("redis %s failed (%s); retrying in %.1fs", operation, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_S)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One ``deliveries`` record. ``latency_ms``: time spent in ``deliver`` so far."""

    action_id: str
    channel: str
    outcome: ProviderOutcome
    attempts: int
    latency_ms: int
    error: str | None
    at: int

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts, exponential backoff with full jitter, and a timeout per attempt.

    The wait before retry ``n`` (1-based) is uniform in
    ``[0, min(max_delay_s, base_delay_s * 2**(n-1))]`` ("full jitter", AWS Architecture
    Blog, *Exponential Backoff and Jitter*): retries of many messages spread out instead
    of hitting a recovering provider in waves. A provider's Retry-After raises the wait.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    attempt_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.attempt_timeout_s <= 0:
            raise ValueError(f"delays must be >= 0 and the timeout > 0: {self}")

    def backoff_s(
        self,
        retry: int,
        *,
        retry_after_s: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        wait = rng() * cap
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_delay_s))
        return wait


class CircuitBreaker:
    """Per channel: stop calling a provider that keeps failing, probe it after a pause.

    closed -> open after ``failure_threshold`` consecutive retryable failures; open ->
    half-open once ``cooldown_s`` has passed, letting one probe through; the probe's
    success closes the circuit, its failure reopens it for another cooldown.
    Non-retryable rejections say nothing about the provider's health and change nothing.
    """

    def __init__(
        self,
        channel: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        self.channel = channel
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_since: float | None = None
        CIRCUIT_OPEN.labels(channel=channel).set(0)

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.cooldown_s:
            return "open"
        return "half_open"

    def allow(self) -> bool:
        """May a request go out now? In half-open, only one probe at a time.

        A probe that never reported back (its task was cancelled) is given up after
        another cooldown, so the breaker cannot stay stuck half-open.
        """
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._probe_since is not None and now - self._probe_since < self.cooldown_s:
            return False
        self._probe_since = now
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_since = None
        CIRCUIT_OPEN.labels(channel=self.channel).set(0)

    def record_failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._probe_since = None
            CIRCUIT_OPEN.labels(channel=self.channel).set(1)

    def release(self) -> None:
        """End a probe that proved nothing (non-retryable rejection, cancellation)."""
        self._probe_since = None


async def deliver(
    channel: Channel,
    msg: Message,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    *,
    on_retry: OnRetry | None = None,
    before_send: BeforeSend | None = None,
    limit: asyncio.Semaphore | None = None,
    rng: Callable[[], float] = random.random,
) -> DeliveryOutcome:
    """Send ``msg`` with retries; return the final outcome (never ``retrying``).

    ``limit`` bounds concurrent sends on this channel; it is held for each attempt, not
    during backoff. ``on_retry`` receives a ``retrying`` record before each backoff;
    ``before_send`` is awaited inside the slot before each attempt (module docstring).
    Exceptions other than DeliveryError and timeouts are bugs and propagate.
    """
    started = time.monotonic()
    attempts = 0
    error: str | None = None

    def outcome(kind: ProviderOutcome, err: str | None) -> DeliveryOutcome:
        return DeliveryOutcome(
            action_id=msg.action_id,
            channel=channel.name,
            outcome=kind,
            attempts=attempts,
            latency_ms=round((time.monotonic() - started) * 1000),
            error=err,
            at=int(time.time() * 1000),
        )

    while True:
        if not breaker.allow():
            last = f" (last error: {error})" if error else ""
            return _final(outcome("dead", f"circuit open for {channel.name}{last}"), msg)
        attempts += 1
        try:
            async with limit or contextlib.nullcontext():
                if before_send is not None:
                    await before_send()
                async with asyncio.timeout(policy.attempt_timeout_s):
                    await channel.send(msg)
        except TimeoutError:
            failure = DeliveryError(
                f"timed out after {policy.attempt_timeout_s:g}s", retryable=True
            )
        except DeliveryError as exc:
            failure = exc
        except BaseException:
            breaker.release()
            raise
        else:
            breaker.record_success()
            return _final(outcome("delivered", None), msg)

        error = failure.reason
        if not failure.retryable:
            breaker.release()
            return _final(outcome("failed", error), msg)
        breaker.record_failure()
        if attempts >= policy.max_attempts:
            return _final(outcome("dead", error), msg)
        DELIVERY_RETRIES.labels(channel=channel.name).inc()
        if on_retry is not None:
            result = on_retry(outcome("retrying", error))
            if inspect.isawaitable(result):
                await result
        await asyncio.sleep(
            policy.backoff_s(attempts, retry_after_s=failure.retry_after_s, rng=rng)
        )


def _final(result: DeliveryOutcome, msg: Message) -> DeliveryOutcome:
    DELIVERIES.labels(channel=result.channel, outcome=result.outcome).inc()
    seconds = (result.at - msg.created_at) / 1000 if msg.created_at else result.latency_ms / 1000
    DELIVERY_SECONDS.labels(channel=result.channel).observe(max(seconds, 0.0))
    return result


class ChannelPool:
    """The configured channels, each with its breaker and its concurrency bound.

    A slow or failing channel holds at most ``concurrency`` sends at a time and trips its
    own breaker; the other channels keep their capacity.
    """

    def __init__(
        self,
        channels: Iterable[Channel],
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 16,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.channels = {ch.name: ch for ch in channels}
        self.breakers = {
            name: CircuitBreaker(name, failure_threshold=failure_threshold, cooldown_s=cooldown_s)
            for name in self.channels
        }
        self.limits = {name: asyncio.Semaphore(concurrency) for name in self.channels}

    async def deliver(
        self,
        msg: Message,
        *,
        on_retry: OnRetry | None = None,
        before_send: BeforeSend | None = None,
    ) -> DeliveryOutcome:
        """Deliver ``msg`` on the channel named ``msg.channel``."""
        name = msg.channel
        channel = self.channels.get(name)
        if channel is None:
            result = DeliveryOutcome(
                action_id=msg.action_id,
                channel=name,
                outcome="failed",
                attempts=0,
                latency_ms=0,
                error=f"no channel {name!r} configured (have: {', '.join(sorted(self.channels))})",
                at=int(time.time() * 1000),
            )
            return _final(result, msg)
        return await deliver(
            channel,
            msg,
            self.policy,
            self.breakers[name],
            on_retry=on_retry,
            before_send=before_send,
            limit=self.limits[name],
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
