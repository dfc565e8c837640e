"""At most one delivery per ``action_id``, across crashes, restarts and rebalances.

One Redis key per action, ``kairos:delivery:{action_id}``, moves through three states:

``inflight:{ms}``
    set atomically (only if the key is absent) right before the channel is called;
``sent:{record}``
    the channel answered; the ``deliveries`` record is kept until it is published;
``done``
    the outcome is on ``deliveries``: anything that sees this skips the action.

A worker that finds ``sent`` (it crashed after sending, before publishing) publishes the
stored record and moves on: nothing is sent twice. A worker that finds ``inflight`` older
than the lease knows the previous worker stopped *while the request was on the wire*:
the message may or may not have reached the provider. That is the one window no
sender-side scheme closes; Kairos chooses not to resend (at most once) and records a
``dead`` outcome saying so, so the loss is visible. Channels pass ``action_id`` on
(email ``Message-ID``, webhook ``X-Kairos-Action-Id``, push ``data.action_id``), so a
receiver that wants exactly-once can de-duplicate on it.

Keys expire after ``ttl_ms`` (7 days by default): longer than any Kafka redelivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000

# Set the in-flight mark if nothing is recorded yet; otherwise return what is there.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'inflight:' .. ARGV[1], 'PX', ARGV[2])
  return false
end
return v
"""

ClaimKind = Literal["claimed", "busy", "interrupted", "sent", "done"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``claim`` found: ``claimed`` means this caller may send now.

    ``busy``: another worker is sending it (within the lease); ``interrupted``: a worker
    stopped mid-send; ``sent``: sent, record not yet published (``record`` holds it);
    ``done``: fully handled.
    """

    kind: ClaimKind
    record: dict[str, Any] | None = None


def ledger_key(action_id: str) -> str:
    return f"kairos:delivery:{action_id}"


class DeliveryLedger:
    def __init__(self, redis: Redis, *, lease_ms: int, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self._redis = redis
        self.lease_ms = lease_ms
        self.ttl_ms = ttl_ms
        self._claim = redis.register_script(_CLAIM)

    async def seen(self, action_id: str) -> bool:
        """Has any worker started on this action?"""
        return bool(await self._redis.exists(ledger_key(action_id)))

    async def claim(self, action_id: str, now: int) -> Claim:
        found = await self._claim(keys=[ledger_key(action_id)], args=[now, self.ttl_ms])
        if found is None:
            return Claim("claimed")
        text = found.decode() if isinstance(found, bytes) else str(found)
        state, _, rest = text.partition(":")
        if state == "inflight":
            started = int(rest or 0)
            return Claim("busy" if now - started < self.lease_ms else "interrupted")
        if state == "sent":
            return Claim("sent", orjson.loads(rest))
        return Claim("done")

    async def sent(self, action_id: str, record: dict[str, Any]) -> None:
        """The channel answered: keep the outcome until it is published."""
        value = b"sent:" + orjson.dumps(record)
        await self._redis.set(ledger_key(action_id), value, px=self.ttl_ms)

    async def done(self, action_id: str) -> None:
        """The outcome is recorded on ``deliveries``; the action is finished for good."""
        await self._redis.set(ledger_key(action_id), b"done", px=self.ttl_ms)

    async def release(self, action_id: str) -> None:
        """Forget a claim that did not send (deferred): a later claim may send it."""
        await self._redis.delete(ledger_key(action_id))
