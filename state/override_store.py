"""The CLI's side of live overrides: read and write them and their history in Redis.

Synchronous (``kairos triggers`` is a short command). The key layout and what an
override means are in ``state/overrides.py``; running processes follow the changes
with ``state/config_watcher.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import redis

from state.overrides import CHANNEL, HISTORY, HISTORY_LIMIT, OVERRIDES, decode_overrides


def read_overrides(client: redis.Redis) -> dict[str, str]:
    return decode_overrides(client.hgetall(OVERRIDES))


def write_overrides(
    client: redis.Redis,
    set_: Mapping[str, str],
    remove: list[str],
    records: list[str],
) -> None:
    """Store and remove overrides, record them and announce the change, in one transaction."""
    pipe = client.pipeline(transaction=True)
    if set_:
        pipe.hset(OVERRIDES, mapping=cast("Mapping[Any, Any]", dict(set_)))
    if remove:
        pipe.hdel(OVERRIDES, *remove)
    if records:
        pipe.lpush(HISTORY, *records)
        pipe.ltrim(HISTORY, 0, HISTORY_LIMIT - 1)
    pipe.publish(CHANNEL, json.dumps(sorted([*set_, *remove])))
    pipe.execute()


def read_history(client: redis.Redis, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` changes, newest first."""
    return [json.loads(raw) for raw in client.lrange(HISTORY, 0, max(limit, 1) - 1)]
