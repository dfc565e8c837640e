"""The dispatcher's durable queue of actions to deliver, in Redis, shared by every worker.

A sorted set ``kairos:dispatch:due`` (member ``action_id``, score = when to deliver, epoch
ms) and a hash ``kairos:dispatch:actions`` (``action_id`` -> the action record as JSON,
``channels.actions.Action.to_json``; parsed back into an ``Action`` when taken).
Immediate sends, quiet-hours deferrals and frequency-cap deferrals are all entries here,
so they survive restarts and rebalances and any dispatcher may deliver them.

``pop_due`` hands out due entries under a lease: it moves their score ``lease_ms`` into
the future in the same atomic step, so two dispatchers never take the same entry. Leases
are short (``KAIROS_DISPATCH_LEASE``, 10 s) and the dispatcher that holds an entry
``renew``s its lease every third of it while it works on it (as an SQS consumer extends a
message's visibility timeout): a live dispatcher, however slow its provider, keeps its
entries; a dead one's come back within about a lease. ``release`` hands entries back at
once (a dispatcher shutting down, or one that found another's attempt still fresh).
``complete`` removes an entry once its outcome is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import orjson
from redis.asyncio import Redis

from channels.actions import Action, BadAction, parse_action

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS = 10_000
DUE_KEY = "kairos:dispatch:due"
ACTIONS_KEY = "kairos:dispatch:actions"

_ADD = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""

_POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('HGET', KEYS[2], id)
  if body then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, body)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""


class Schedule:
    def __init__(self, redis: Redis, *, lease_ms: int = DEFAULT_LEASE_MS) -> None:
        self._redis = redis
        self.lease_ms = lease_ms
        self._add = redis.register_script(_ADD)
        self._pop = redis.register_script(_POP_DUE)

    async def add(self, action: Action, due: int) -> bool:
        """Queue ``action`` for ``due``; False (and no change) if it is already queued."""
        args: list[int | str | bytes] = [due, action.action_id, action.to_json()]
        return bool(await self._add(keys=[DUE_KEY, ACTIONS_KEY], args=args))

    async def reschedule(self, action: Action, due: int) -> None:
        """Move a taken entry to ``due`` (a deferral), storing the updated action."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(DUE_KEY, {action.action_id: due})
            pipe.hset(ACTIONS_KEY, action.action_id, action.to_json())
            await pipe.execute()

    async def pop_due(self, now: int, limit: int) -> list[Action]:
        """Up to ``limit`` entries due at ``now``, leased to the caller for ``lease_ms``.

        An entry that is not an action (written by a version that stored another shape)
        can never be delivered: it is logged and removed.
        """
        if limit <= 0:
            return []
        raw = await self._pop(keys=[DUE_KEY, ACTIONS_KEY], args=[now, now + self.lease_ms, limit])
        taken = []
        for body in raw:
            parsed = parse_action(body)
            if isinstance(parsed, BadAction):
                await self._drop_unreadable(body, parsed.reason)
            else:
                taken.append(parsed)
        return taken

    async def _drop_unreadable(self, body: bytes, reason: str) -> None:
        try:
            action_id = orjson.loads(body).get("action_id")
        except (orjson.JSONDecodeError, AttributeError):
            action_id = None
        log.error("schedule entry %s is not an action (%s): removed", action_id, reason)
        if isinstance(action_id, str):
            await self.complete(action_id)

    async def renew(self, action_ids: Collection[str], now: int) -> None:
        """Extend the lease of entries still being worked on to ``now + lease_ms``.

        Only existing entries (``XX``: a completed one stays gone) and only forward
        (``GT``: a deferral already set further out stays where it is).
        """
        if action_ids:
            until = now + self.lease_ms
            await self._redis.zadd(DUE_KEY, dict.fromkeys(action_ids, until), xx=True, gt=True)

    async def release(self, action_ids: Collection[str], at: int) -> None:
        """Hand leased entries back: due again at ``at`` (existing entries only)."""
        if action_ids:
            await self._redis.zadd(DUE_KEY, dict.fromkeys(action_ids, at), xx=True)

    async def complete(self, action_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(DUE_KEY, action_id)
            pipe.hdel(ACTIONS_KEY, action_id)
            await pipe.execute()

    async def due_at(self, action_id: str) -> int | None:
        score = await self._redis.zscore(DUE_KEY, action_id)
        return None if score is None else int(score)

    async def size(self) -> int:
        return int(await self._redis.zcard(DUE_KEY))

    async def drop_customer(self, customer_id: str) -> list[str]:
        """Remove every queued entry of ``customer_id`` (forgetting them); returns their ids.

        A scan of the queue (``HSCAN``, never blocking Redis): forgetting is rare.
        """
        needle = orjson.dumps(customer_id)  # the quoted JSON string, a cheap first filter
        doomed = [
            action_id
            async for action_id, body in self._redis.hscan_iter(ACTIONS_KEY, count=1000)
            if needle in body and orjson.loads(body).get("customer_id") == customer_id
        ]
        if doomed:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(DUE_KEY, *doomed)
                pipe.hdel(ACTIONS_KEY, *doomed)
                await pipe.execute()
        return [a.decode() if isinstance(a, bytes) else a for a in doomed]
