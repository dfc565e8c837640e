"""What happened to each ``action_id`` towards its provider, across crashes and restarts.

Delivery is **at least once** towards providers, with the ``action_id`` as the
idempotency key (email ``Message-ID``, webhook ``X-Kairos-Action-Id``, push
``data.action_id``): a receiver that wants exactly once de-duplicates on it. Kairos never
drops an action because a dispatcher died; when it cannot know whether a send reached the
provider, it sends again and says so.

One Redis key per action, ``kairos:delivery:{action_id}``, in one of these states:

(absent)
    nobody has called a provider for it: any dispatcher holding its schedule lease may.
    Contact lookup, policy and the wait for a channel slot leave nothing here, so a
    dispatcher that dies during them blocks nothing.
``attempt:{ms}:{owner}``
    ``claim``, called with the channel slot held right before the provider call, set it
    atomically: dispatcher ``owner`` may have a request on the wire. The owner refreshes
    ``ms`` (``renew``) with its schedule leases while it works on the action. A mark older
    than ``lease_ms`` belongs to a dispatcher that stopped mid-send: the next ``claim``
    takes it over (``interrupted``) and the send is repeated, recorded on ``deliveries``
    with ``maybe_resent: true`` (and counted in ``kairos_deliveries_resent_total``). A
    fresh mark of another owner is ``busy``: never two sends of one action within a lease.
``sent:{record}``
    the provider answered; the ``deliveries`` record is kept until it is published. A
    dispatcher that finds it publishes the stored record: the send is not repeated (the
    record may then be on ``deliveries`` twice, identical, if the first publish got
    through before the crash).
``done``
    the outcome is on ``deliveries``: anything that sees this skips the action.

Keys expire after ``ttl_ms`` (7 days by default): longer than any Kafka redelivery.
Leases compare wall clocks of different hosts: keep them in sync (NTP) to well within a
lease.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000

# Mark an attempt unless another owner's fresh one is there; say what was found.
# ARGV: now, owner, lease_ms, ttl_ms. Returns new | mine | interrupted | busy:{ms} | the value.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
local mark = 'attempt:' .. ARGV[1] .. ':' .. ARGV[2]
if not v then
  redis.call('SET', KEYS[1], mark, 'PX', ARGV[4])
  return 'new'
end
if string.sub(v, 1, 8) ~= 'attempt:' then
  return v
end
local sep = string.find(v, ':', 9, true)
local ms = string.sub(v, 9, sep - 1)
if string.sub(v, sep + 1) == ARGV[2] then
  redis.call('SET', KEYS[1], mark, 'PX', ARGV[4])
  return 'mine'
end
if tonumber(ARGV[1]) - tonumber(ms) < tonumber(ARGV[3]) then
  return 'busy:' .. ms
end
redis.call('SET', KEYS[1], mark, 'PX', ARGV[4])
return 'interrupted'
"""

# Set the time of ``owner``'s attempt marks among KEYS to ARGV[1] (0 gives them up).
# ARGV: ms, owner, ttl_ms.
_STAMP = """
for _, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, 8) == 'attempt:' then
    local sep = string.find(v, ':', 9, true)
    if string.sub(v, sep + 1) == ARGV[2] then
      redis.call('SET', key, 'attempt:' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
    end
  end
end
return 0
"""

ClaimKind = Literal["new", "mine", "interrupted", "busy", "sent", "done"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What the ledger holds for an action, from the point of view of ``owner``.

    ``new``: no attempt yet; ``mine``: the owner's own attempt; ``interrupted``: another
    owner's attempt older than the lease (it stopped mid-send); ``busy``: another owner's
    fresh attempt, marked at ``since``; ``sent``: sent, ``record`` not yet published;
    ``done``: fully handled.
    """

    kind: ClaimKind
    record: dict[str, Any] | None = None
    since: int = 0


def ledger_key(action_id: str) -> str:
    return f"kairos:delivery:{action_id}"


class DeliveryLedger:
    def __init__(self, redis: Redis, *, lease_ms: int, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self._redis = redis
        self.lease_ms = lease_ms
        self.ttl_ms = ttl_ms
        self._claim = redis.register_script(_CLAIM)
        self._stamp = redis.register_script(_STAMP)

    async def seen(self, action_id: str) -> bool:
        """Has any dispatcher called a provider for this action (or finished it)?"""
        return bool(await self._redis.exists(ledger_key(action_id)))

    async def check(self, action_id: str, owner: str, now: int) -> Claim:
        """What ``claim`` would find, changing nothing."""
        value = await self._redis.get(ledger_key(action_id))
        if value is None:
            return Claim("new")
        text = value.decode() if isinstance(value, bytes) else value
        state, _, rest = text.partition(":")
        if state == "attempt":
            ms, _, who = rest.partition(":")
            return self._attempt(int(ms), who == owner, now)
        return self._settled(state, rest)

    async def claim(self, action_id: str, owner: str, now: int) -> Claim:
        """Mark ``owner``'s attempt, right before it calls the provider.

        The owner may send on ``new``, ``mine`` and ``interrupted`` (the mark is now
        its own; ``interrupted`` means the message may have gone out already); on
        ``busy``, ``sent`` and ``done`` nothing was changed and it must not send.
        """
        args: list[str | int] = [now, owner, self.lease_ms, self.ttl_ms]
        found = (await self._claim(keys=[ledger_key(action_id)], args=args)).decode()
        if found in ("new", "mine", "interrupted"):
            return Claim(found)  # type: ignore[arg-type]
        state, _, rest = found.partition(":")
        if state == "busy":
            return Claim("busy", since=int(rest))
        return self._settled(state, rest)

    def _attempt(self, ms: int, mine: bool, now: int) -> Claim:
        if mine:
            return Claim("mine", since=ms)
        if now - ms < self.lease_ms:
            return Claim("busy", since=ms)
        return Claim("interrupted", since=ms)

    @staticmethod
    def _settled(state: str, rest: str) -> Claim:
        if state == "sent":
            return Claim("sent", orjson.loads(rest))
        return Claim("done")

    async def renew(self, action_ids: Collection[str], owner: str, now: int) -> None:
        """Refresh ``owner``'s attempt marks: it is alive and still working on them."""
        await self._stamp_all(action_ids, owner, now)

    async def abandon(self, action_ids: Collection[str], owner: str) -> None:
        """Age ``owner``'s attempt marks past the lease (a shutdown that stopped waiting on
        them): the next claim resends at once, flagged, instead of waiting a lease."""
        await self._stamp_all(action_ids, owner, 0)

    async def _stamp_all(self, action_ids: Collection[str], owner: str, ms: int) -> None:
        if action_ids:
            keys = [ledger_key(a) for a in action_ids]
            await self._stamp(keys=keys, args=[ms, owner, self.ttl_ms])

    async def clear(self, action_id: str) -> None:
        """Forget attempts the provider answered with a refusal: nothing reached it."""
        await self._redis.delete(ledger_key(action_id))

    async def sent(self, action_id: str, record: dict[str, Any]) -> None:
        """The provider answered: keep the outcome until it is published."""
        value = b"sent:" + orjson.dumps(record)
        await self._redis.set(ledger_key(action_id), value, px=self.ttl_ms)

    async def done(self, action_id: str) -> None:
        """The outcome is recorded on ``deliveries``; the action is finished for good."""
        await self._redis.set(ledger_key(action_id), b"done", px=self.ttl_ms)
