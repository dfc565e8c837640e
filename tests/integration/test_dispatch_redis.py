"""Frequency caps, priority, the idempotency ledger and the schedule, on a real Redis.

The cap windows are parameters, so a "day" of 300 ms runs without sleeping for a day.
(What the dispatcher decides from their answers, without Redis:
``tests/unit/test_dispatch_decision.py``.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from channels.actions import Action
from channels.idempotency import DeliveryLedger
from channels.policy import ContactPolicy
from channels.schedule import Schedule
from core.config import FrequencyCaps, PolicyConfig

pytestmark = pytest.mark.integration

POLICY = PolicyConfig(frequency_caps=FrequencyCaps(per_day=2, per_hour_push=1), priority_window=100)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    yield client
    await client.aclose()


def queued(action_id: str) -> Action:
    return Action(action_id, "c", "welcome", "email", "send", payload={"n": 1})


def ids() -> tuple[str, str]:
    return f"c-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]


async def admit(policy: ContactPolicy, cid: str, n: int, channel: str, now: int, **kw: object):
    return await policy.admit(
        kw.get("cfg", POLICY),  # type: ignore[arg-type]
        customer_id=cid,
        action_id=f"a{n}",
        channel=channel,
        trigger=str(kw.get("trigger", "abandoned_cart")),
        priority=int(kw.get("priority", 50)),  # type: ignore[call-overload]
        now=now,
    )


async def test_per_day_cap_defers_until_the_oldest_message_leaves_the_window(redis) -> None:
    policy = ContactPolicy(redis, day_ms=1000, hour_ms=500)
    cid, _ = ids()
    assert (await admit(policy, cid, 1, "email", 10_000)).kind == "ok"
    assert (await admit(policy, cid, 2, "email", 10_100)).kind == "ok"
    capped = await admit(policy, cid, 3, "email", 10_200)
    assert (capped.kind, capped.free_at, capped.detail) == ("capped", 11_000, "per_day")
    assert (await admit(policy, cid, 3, "email", 11_001)).kind == "ok"


async def test_push_is_capped_per_hour_while_email_still_goes(redis) -> None:
    policy = ContactPolicy(redis, day_ms=10_000, hour_ms=500)
    cid, _ = ids()
    assert (await admit(policy, cid, 1, "push", 1000)).kind == "ok"
    capped = await admit(policy, cid, 2, "push", 1100)
    assert (capped.kind, capped.free_at, capped.detail) == ("capped", 1500, "per_hour_push")
    assert (await admit(policy, cid, 3, "email", 1100)).kind == "ok"


async def test_readmitting_the_same_action_does_not_count_twice(redis) -> None:
    policy = ContactPolicy(redis, day_ms=10_000)
    cid, _ = ids()
    for _ in range(3):
        assert (await admit(policy, cid, 1, "email", 1000)).kind == "ok"
    assert (await admit(policy, cid, 2, "email", 1000)).kind == "ok"


async def test_released_reservation_frees_the_cap(redis) -> None:
    policy = ContactPolicy(redis, day_ms=10_000)
    cid, _ = ids()
    await admit(policy, cid, 1, "email", 1000)
    await admit(policy, cid, 2, "email", 1000)
    await policy.release(
        customer_id=cid, action_id="a2", channel="email", trigger="abandoned_cart", priority=50
    )
    assert (await admit(policy, cid, 3, "email", 1000)).kind == "ok"


async def test_lower_priority_trigger_loses_within_the_window_only(redis) -> None:
    policy = ContactPolicy(redis, day_ms=10_000)
    cid, _ = ids()
    high = await admit(policy, cid, 1, "email", 1000, trigger="limited_time_offer", priority=80)
    assert high.kind == "ok"
    low = await admit(policy, cid, 2, "push", 1050, priority=50)
    assert (low.kind, low.detail) == ("priority", "limited_time_offer")
    assert (await admit(policy, cid, 3, "push", 1200, priority=50)).kind == "ok"  # window over
    assert (await admit(policy, cid, 4, "email", 1210, trigger="x", priority=90)).kind == "capped"


async def test_concurrent_admissions_never_exceed_the_cap(redis) -> None:
    policy = ContactPolicy(redis, day_ms=10_000)
    cid, _ = ids()
    verdicts = await asyncio.gather(*(admit(policy, cid, n, "email", 1000) for n in range(20)))
    assert sum(v.kind == "ok" for v in verdicts) == 2


async def test_ledger_marks_attempts_and_tells_a_live_sender_from_a_stopped_one(redis) -> None:
    ledger = DeliveryLedger(redis, lease_ms=1000)
    _, action_id = ids()
    assert (await ledger.check(action_id, "a", 0)).kind == "new"
    assert not await ledger.seen(action_id)  # looking leaves nothing behind
    assert (await ledger.claim(action_id, "a", 0)).kind == "new"
    assert (await ledger.claim(action_id, "a", 100)).kind == "mine"  # a retry
    busy = await ledger.claim(action_id, "b", 600)
    assert (busy.kind, busy.since) == ("busy", 100)  # b must not send within a's lease
    assert (await ledger.check(action_id, "b", 600)).kind == "busy"
    await ledger.renew([action_id], "a", 1000)  # a is alive: its mark stays fresh
    assert (await ledger.claim(action_id, "b", 1500)).kind == "busy"
    assert (await ledger.check(action_id, "b", 2000)).kind == "interrupted"
    assert (await ledger.claim(action_id, "b", 2000)).kind == "interrupted"  # b takes over
    await ledger.renew([action_id], "a", 2100)  # a's late renewal changes nothing
    assert (await ledger.claim(action_id, "a", 2200)).kind == "busy"
    await ledger.sent(action_id, {"outcome": "delivered"})
    claim = await ledger.claim(action_id, "c", 9000)
    assert (claim.kind, claim.record) == ("sent", {"outcome": "delivered"})
    await ledger.done(action_id)
    assert (await ledger.claim(action_id, "c", 9000)).kind == "done"
    assert (await ledger.check(action_id, "c", 9000)).kind == "done"


async def test_an_abandoned_attempt_is_taken_over_at_once(redis) -> None:
    ledger = DeliveryLedger(redis, lease_ms=60_000)
    _, action_id = ids()
    now = 1_764_600_000_000
    await ledger.claim(action_id, "a", now)
    await ledger.abandon([action_id], "b")  # only the owner's marks move
    assert (await ledger.claim(action_id, "b", now + 1)).kind == "busy"
    await ledger.abandon([action_id], "a")
    assert (await ledger.claim(action_id, "b", now + 1)).kind == "interrupted"


async def test_schedule_leases_due_entries_to_one_taker(redis) -> None:
    schedule = Schedule(redis, lease_ms=1000)
    _, action_id = ids()
    action = queued(action_id)
    assert await schedule.add(action, 100)
    assert not await schedule.add(action, 50)  # already queued: unchanged
    assert all(a.action_id != action_id for a in await schedule.pop_due(99, 1000))
    taken = [a for a in await schedule.pop_due(100, 1000) if a.action_id == action_id]
    assert taken == [action]
    assert await schedule.due_at(action_id) == 1100  # leased
    assert all(a.action_id != action_id for a in await schedule.pop_due(500, 1000))
    await schedule.complete(action_id)
    assert await schedule.due_at(action_id) is None


async def test_schedule_renews_held_leases_forward_only_and_hands_entries_back(redis) -> None:
    schedule = Schedule(redis, lease_ms=1000)
    _, held = ids()
    _, deferred = ids()
    _, gone = ids()
    for action_id in (held, deferred):
        await schedule.add(queued(action_id), 0)
    await schedule.reschedule(queued(deferred), 50_000)
    await schedule.renew([held, deferred, gone], 5000)
    assert await schedule.due_at(held) == 6000
    assert await schedule.due_at(deferred) == 50_000  # a deferral further out stays
    assert await schedule.due_at(gone) is None  # a finished entry is not brought back
    await schedule.release([held, gone], 5001)
    assert await schedule.due_at(held) == 5001
    assert await schedule.due_at(gone) is None
