"""A real ``kairos dispatcher`` killed, stopped and flooded mid-burst: what reached the receiver.

Each test runs its own broker and Redis (a new dispatcher group reads ``actions`` from the
start, so a shared broker would replay earlier tests' bursts), its own dispatcher
process(es) and a webhook receiver that
counts requests per ``X-Kairos-Action-Id`` *on arrival*: a request that reached the
receiver counts even when the dispatcher dies before reading the answer, which is the
window at-least-once delivery has to flag. ``deliveries`` is read back from the broker.

Counts are printed (``pytest -s`` shows them): actions, received, flagged as possibly
resent, received twice, lost.
"""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from deliveries_reader import Deliveries
from kafka_helpers import produce
from workers import Worker, worker_env

from kairos.launcher import (
    Broker,
    RedisServer,
    free_port,
    resolve_broker_bin,
    resolve_redis_bin,
    start_broker,
    start_redis,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A broker of this test's own (overrides the session one, even if $BROKER_URL is set)."""
    with start_broker(resolve_broker_bin()) as running:
        yield running


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with start_redis(resolve_redis_bin()) as running:
        yield running


class Receiver:
    """A webhook endpoint answering 200 after ``delay_s``; counts action_ids on arrival."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.hits: Counter[str] = Counter()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.hits[request.headers.get("X-Kairos-Action-Id", "?")] += 1
        await asyncio.sleep(self.delay_s)
        return web.Response(text="ok")

    def received(self, ids: Iterable[str]) -> int:
        return sum(1 for a in ids if self.hits[a])


@asynccontextmanager
async def receiver(delay_s: float) -> AsyncIterator[Receiver]:
    rx = Receiver(delay_s)
    app = web.Application()
    app.router.add_post("/webhook", rx.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    rx.url = f"http://127.0.0.1:{port}/webhook"
    try:
        yield rx
    finally:
        await runner.cleanup()


async def until(cond: Callable[[], bool], timeout: float, *poll: Deliveries) -> bool:
    """Wait up to ``timeout`` for ``cond``; whether it held (the counts tell what did not)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        if poll:
            await poll[0].poll()
        else:
            await asyncio.sleep(0.05)
    return True


def burst(n: int) -> list[dict[str, Any]]:
    """``n`` webhook sends, one customer each (so nothing waits behind a customer's queue)."""
    now = int(time.time() * 1000)
    return [
        {
            "action_id": f"act-{uuid.uuid4().hex[:12]}",
            "trigger": "churn_alert",
            "customer_id": f"c-{uuid.uuid4().hex[:10]}",
            "channel": "webhook",
            "decided_at": now,
            "status": "send",
            "reason": "test",
            "payload": {},
            "source_event_ids": ["e1"],
        }
        for _ in range(n)
    ]


async def publish(bootstrap: str, actions: list[dict[str, Any]]) -> None:
    records = [(a["customer_id"].encode(), orjson.dumps(a)) for a in actions]
    await produce(bootstrap, "actions", records)


def dispatcher_env(
    broker: Broker, redis: RedisServer, rx: Receiver, tmp_path: Path, app_id: str, **extra: str
) -> dict[str, str]:
    config = tmp_path / "triggers.yaml"
    config.write_text("policy:\n  quiet_hours:\n    enabled: false\n")
    port = str(free_port())
    env = worker_env(broker.url, redis.url, config, app_id)
    env.update(
        KAIROS_METRICS_PORT=port,
        KAIROS_DISPATCHER_METRICS_PORT=port,
        KAIROS_WEBHOOK_URL=rx.url,
        KAIROS_WEBHOOK_SECRET="s3cret",
        KAIROS_DELIVERY_MAX_ATTEMPTS="3",
        KAIROS_DELIVERY_BASE_DELAY="0.05",
        KAIROS_DELIVERY_MAX_DELAY="0.2",
        KAIROS_DELIVERY_TIMEOUT="5",
        KAIROS_CIRCUIT_FAILURES="1000",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def started(worker: Worker, timeout: float = 40.0) -> None:
    """Wait until the dispatcher serves /health (its Faust app has started)."""
    deadline = time.monotonic() + timeout
    while True:
        worker.check_alive()
        try:
            url = f"http://127.0.0.1:{worker.metrics_port}/health"
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"not up after {timeout}s\n{worker.tail()}") from None
            await asyncio.sleep(0.2)


async def warm_up(broker: Broker, rx: Receiver, worker: Worker) -> None:
    """One action through end to end: the dispatcher has joined and delivers."""
    await started(worker)
    (probe,) = burst(1)
    await publish(broker.bootstrap, [probe])
    assert await until(lambda: rx.hits[probe["action_id"]] > 0, 40), worker.tail()


def report(name: str, ids: list[str], rx: Receiver, dl: Deliveries, **more: int) -> str:
    twice = sum(1 for a in ids if rx.hits[a] > 1)
    lost = sum(1 for a in ids if not rx.hits[a])
    extra = "".join(f", {k} {v}" for k, v in more.items())
    line = (
        f"{name}: actions {len(ids)}, received {rx.received(ids)}, "
        f"requests {sum(rx.hits[a] for a in ids)}, flagged resent {len(dl.flagged(ids))}, "
        f"received twice {twice}, lost {lost}{extra}; outcomes {dict(dl.counts(ids))}"
    )
    print(line)
    return line


# --- kill -9 mid-burst --------------------------------------------------------------------


async def test_kill_9_mid_burst_loses_nothing_and_flags_every_resend(
    broker: Broker, redis: RedisServer, tmp_path: Path
) -> None:
    app_id = f"crash-{uuid.uuid4().hex[:6]}"
    async with receiver(0.1) as rx, Deliveries(broker.bootstrap) as dl:
        env = dispatcher_env(broker, redis, rx, tmp_path, app_id, KAIROS_CHANNEL_CONCURRENCY="32")
        first = Worker(env, command="dispatcher")
        second: Worker | None = None
        try:
            await warm_up(broker, rx, first)
            actions = burst(1500)
            ids = [a["action_id"] for a in actions]
            await publish(broker.bootstrap, actions)
            assert await until(lambda: rx.received(ids) >= 300, 30), first.tail()
            first.stop(signal.SIGKILL)
            at_kill = rx.received(ids)

            second = Worker(env, command="dispatcher")
            await until(lambda: rx.received(ids) == len(ids), 45)
            await until(lambda: dl.finished(ids), 20, dl)
            resent_metric = second.metric("kairos_deliveries_resent_total")
        finally:
            first.stop(signal.SIGKILL)
            if second is not None:
                second.stop()
        await dl.settle()  # every record the dispatchers published, to the last

    line = report("kill -9", ids, rx, dl, received_at_kill=at_kill)
    lost = [a for a in ids if not rx.hits[a]]
    twice = {a for a in ids if rx.hits[a] > 1}
    flagged = dl.flagged(ids)
    assert not lost, line
    assert twice <= flagged, f"sent twice without a maybe_resent record: {twice - flagged}"
    assert dl.counts(ids)["dead"] == 0, line
    assert all(any(r["outcome"] == "delivered" for r in dl.by_action[a]) for a in ids), line
    assert resent_metric == len(flagged), line


# --- SIGTERM mid-burst --------------------------------------------------------------------

DRAIN_S = 5.0
EXIT_BOUND_S = DRAIN_S + 5.0


async def test_sigterm_mid_burst_finishes_in_flight_hands_back_the_rest_and_exits_0(
    broker: Broker, redis: RedisServer, tmp_path: Path
) -> None:
    # A 60 s lease: entries the stopping dispatcher kept would come back only after the
    # test's deadline, so delivery in time proves they were handed back at once.
    app_id = f"sigterm-{uuid.uuid4().hex[:6]}"
    async with receiver(0.1) as rx, Deliveries(broker.bootstrap) as dl:
        common = {"KAIROS_DISPATCH_LEASE": "60", "KAIROS_DISPATCH_DRAIN": str(DRAIN_S)}
        slow = dispatcher_env(
            broker, redis, rx, tmp_path, app_id, KAIROS_CHANNEL_CONCURRENCY="8", **common
        )
        fast = dispatcher_env(
            broker, redis, rx, tmp_path, app_id, KAIROS_CHANNEL_CONCURRENCY="64", **common
        )
        stopping = Worker(slow, command="dispatcher")
        taker: Worker | None = None
        try:
            await warm_up(broker, rx, stopping)
            actions = burst(1500)
            ids = [a["action_id"] for a in actions]
            await publish(broker.bootstrap, actions)
            assert await until(lambda: rx.received(ids) >= 100, 30), stopping.tail()
            signalled = time.monotonic()
            stopping.process.send_signal(signal.SIGTERM)
            taker = Worker(fast, command="dispatcher")
            while stopping.process.poll() is None and time.monotonic() - signalled < 30:
                await asyncio.sleep(0.05)
            exit_s = time.monotonic() - signalled
            code = stopping.process.poll()
            at_exit = rx.received(ids)
            await until(lambda: rx.received(ids) == len(ids), 30)
            await until(lambda: dl.finished(ids), 20, dl)
        finally:
            stopping.stop(signal.SIGKILL)
            if taker is not None:
                taker.stop()
        await dl.settle()

    line = report("SIGTERM", ids, rx, dl, received_at_exit=at_exit, exit_ms=int(exit_s * 1000))
    assert code == 0, f"exit code {code}\n{stopping.tail()}"
    assert exit_s <= EXIT_BOUND_S, line
    assert all(rx.hits[a] == 1 for a in ids), line
    assert not dl.flagged(ids), line
    assert dl.counts(ids) == Counter(delivered=len(ids)), line


# --- a slow live dispatcher next to another one ---------------------------------------


async def test_a_live_dispatcher_slower_than_its_lease_keeps_its_entries(
    broker: Broker, redis: RedisServer, tmp_path: Path
) -> None:
    # Each request takes 3 s, twice the 1.5 s lease: without renewals the other
    # dispatcher would take the entries over and send them a second time.
    app_id = f"renew-{uuid.uuid4().hex[:6]}"
    async with receiver(3.0) as rx, Deliveries(broker.bootstrap) as dl:
        envs = [
            dispatcher_env(broker, redis, rx, tmp_path, app_id, KAIROS_DISPATCH_LEASE="1.5")
            for _ in range(2)
        ]
        dispatchers = [Worker(env, command="dispatcher") for env in envs]
        try:
            for dispatcher in dispatchers:
                await started(dispatcher)
            actions = burst(40)
            ids = [a["action_id"] for a in actions]
            await publish(broker.bootstrap, actions)
            await until(lambda: dl.finished(ids), 40, dl)
        finally:
            for dispatcher in dispatchers:
                dispatcher.stop()
        await dl.settle()

    line = report("slow", ids, rx, dl)
    assert all(rx.hits[a] == 1 for a in ids), line
    assert not dl.flagged(ids), line
    assert dl.counts(ids) == Counter(delivered=len(ids)), line


# --- more concurrent deliveries than redis-py's default pool ------------------------------


async def test_a_burst_beyond_the_default_redis_pool_waits_for_connections_and_delivers_all(
    broker: Broker, redis: RedisServer, tmp_path: Path
) -> None:
    # redis-py's async pool holds 100 connections by default; 1,000 deliveries at once
    # each need one for their ledger and schedule writes.
    app_id = f"pool-{uuid.uuid4().hex[:6]}"
    async with receiver(0.02) as rx, Deliveries(broker.bootstrap) as dl:
        env = dispatcher_env(
            broker,
            redis,
            rx,
            tmp_path,
            app_id,
            KAIROS_CHANNEL_CONCURRENCY="1000",
            KAIROS_DISPATCH_MAX_INFLIGHT="1000",
        )
        dispatcher = Worker(env, command="dispatcher")
        try:
            await warm_up(broker, rx, dispatcher)
            actions = burst(2000)
            ids = [a["action_id"] for a in actions]
            await publish(broker.bootstrap, actions)
            await until(lambda: dl.finished(ids), 30, dl)
            redis_errors = dispatcher.metric("kairos_redis_errors_total")
        finally:
            dispatcher.stop()
        await dl.settle()
        log = Path(dispatcher.log.name).read_text(errors="replace")

    line = report("pool", ids, rx, dl, redis_errors=int(redis_errors))
    assert "Too many connections" not in log and "MaxConnectionsError" not in log, line
    assert dl.counts(ids) == Counter(delivered=len(ids)), line
    assert all(rx.hits[a] == 1 for a in ids), line
    assert redis_errors == 0, line
