"""Frequency caps and trigger priority across all workers, decided atomically in Redis.

Per customer, a sorted set ``kairos:contacted:{customer_id}`` holds the messages sent on
capped channels in the last 24 hours (member ``action_id|channel|priority|trigger``,
score = when). One Lua script decides and reserves in a single step, so two dispatchers
sending to the same customer at the same moment cannot both squeeze under a cap:

1. **priority**: a message from another trigger with a higher priority went out within
   ``policy.priority_window``: this one loses (``priority``);
2. **per_day**: ``frequency_caps.per_day`` messages in the rolling 24 hours: ``capped``
   until the oldest of them is 24 hours old;
3. **per_hour_push**: the same for push within the rolling hour;
4. otherwise the message is reserved (counted) and may go out (``ok``).

A cap of 0 or less means "no cap". Re-admitting an action already reserved answers
``ok`` without counting it twice (a crash and retry). ``release`` gives a reservation
back when the send failed. Channels in ``policy.cap_exempt_channels`` (internal alerts)
never reach this module: they are neither capped nor compete on priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis

from core.config import PolicyConfig

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

_ADMIT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local member, channel, trigger = ARGV[2], ARGV[3], ARGV[5]
local prio = tonumber(ARGV[4])
local per_day, per_hour_push = tonumber(ARGV[6]), tonumber(ARGV[7])
local day, hour, window = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
if redis.call('ZSCORE', key, member) then return {'ok', '0', ''} end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - day)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, now - window, '+inf')) do
  local _, _, ch, p, trg = string.find(m, '^[^|]*|([^|]*)|([^|]*)|(.*)$')
  if trg ~= trigger and tonumber(p) > prio then return {'priority', '0', trg} end
end
local n = redis.call('ZCARD', key)
if per_day > 0 and n >= per_day then
  local oldest = redis.call('ZRANGE', key, n - per_day, n - per_day, 'WITHSCORES')
  return {'capped', tostring(tonumber(oldest[2]) + day), 'per_day'}
end
if channel == 'push' and per_hour_push > 0 then
  local pushes = {}
  local recent = redis.call('ZRANGEBYSCORE', key, now - hour, '+inf', 'WITHSCORES')
  for i = 1, #recent, 2 do
    local _, _, ch = string.find(recent[i], '^[^|]*|([^|]*)|')
    if ch == 'push' then table.insert(pushes, tonumber(recent[i + 1])) end
  end
  if #pushes >= per_hour_push then
    return {'capped', tostring(pushes[#pushes - per_hour_push + 1] + hour), 'per_hour_push'}
  end
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, day + window)
return {'ok', '0', ''}
"""


VerdictKind = Literal["ok", "priority", "capped"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok``; ``priority`` (``detail`` = the winning trigger); ``capped`` until ``free_at``
    (``detail`` = ``per_day`` or ``per_hour_push``)."""

    kind: VerdictKind
    free_at: int = 0
    detail: str = ""


def contacted_key(customer_id: str) -> str:
    return f"kairos:contacted:{customer_id}"


def _member(action_id: str, channel: str, priority: int, trigger: str) -> str:
    return f"{action_id}|{channel}|{priority}|{trigger}"


class ContactPolicy:
    """Caps and priority for one ``PolicyConfig``; the windows are parameters for tests."""

    def __init__(self, redis: Redis, *, day_ms: int = DAY_MS, hour_ms: int = HOUR_MS) -> None:
        self._redis = redis
        self._admit = redis.register_script(_ADMIT)
        self.day_ms = day_ms
        self.hour_ms = hour_ms

    @staticmethod
    def exempt(policy: PolicyConfig, channel: str) -> bool:
        return channel in policy.cap_exempt_channels

    async def admit(
        self,
        policy: PolicyConfig,
        *,
        customer_id: str,
        action_id: str,
        channel: str,
        trigger: str,
        priority: int,
        now: int,
    ) -> Verdict:
        caps = policy.frequency_caps
        kind, free_at, detail = await self._admit(
            keys=[contacted_key(customer_id)],
            args=[
                now,
                _member(action_id, channel, priority, trigger),
                channel,
                priority,
                trigger,
                caps.per_day,
                caps.per_hour_push,
                self.day_ms,
                self.hour_ms,
                policy.priority_window,
            ],
        )
        text = kind.decode() if isinstance(kind, bytes) else kind
        detail_text = detail.decode() if isinstance(detail, bytes) else detail
        return Verdict(cast(VerdictKind, text), int(free_at), detail_text)

    async def release(
        self, *, customer_id: str, action_id: str, channel: str, trigger: str, priority: int
    ) -> None:
        """Give back a reservation whose message was not delivered."""
        member = _member(action_id, channel, priority, trigger)
        await self._redis.zrem(contacted_key(customer_id), member)
