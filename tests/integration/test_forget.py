"""Forgetting a customer: ``kairos forget`` against a real broker, Redis, worker and dispatcher.

A customer with an email, a phone, a push token and a name gets a welcome (delivered) and
a second message held back by the frequency cap (queued in Redis). After ``kairos forget``
every store is searched for their personal data: the worker's state (the latest changelog
record for their key, what a restarted worker would load) and Redis (every key and value
of every database). Another customer, not forgotten, keeps theirs: the search would
have found it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis
from kafka_helpers import consume_all, produce
from live_stack import (
    Receivers,
    RedisProcess,
    dump_redis,
    kairos,
    start,
    start_redis_process,
    wait_until,
)
from workers import Worker

from channels.idempotency import ledger_key
from kairos.launcher import Broker, create_topics, free_port, start_broker
from state import codec
from stream import topics

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

CONFIG = """
engine:
  timer_grace: 0s
policy:
  quiet_hours:
    enabled: false
  frequency_caps:
    per_day: 1
triggers:
  welcome:
    channel: email
    template: "Welcome {first_name}, {email}"
"""


@dataclass(frozen=True)
class Person:
    customer_id: str
    email: str
    phone: str
    push_token: str
    first_name: str
    last_name: str

    @classmethod
    def make(cls, role: str) -> Person:
        t = uuid.uuid4().hex[:10]
        return cls(
            f"{role}-{t}", f"{role}.{t}@mail.example", f"+4930{int(t, 16) % 10**8:08d}",
            f"token-{t}", f"Greta{t}", f"Berg{t}",
        )  # fmt: skip

    @property
    def personal(self) -> dict[str, str]:
        return {
            "email": self.email,
            "phone": self.phone,
            "push_token": self.push_token,
            "first_name": self.first_name,
            "last_name": self.last_name,
        }

    def profile(self) -> tuple[bytes, bytes]:
        value = {
            "customer_id": self.customer_id,
            "email": self.email,
            "phone": self.phone,
            "push_token": self.push_token,
            "timezone": "Europe/Berlin",
            "locale": "de-DE",
            "consent": {"email": True},
            "attributes": {"first_name": self.first_name, "last_name": self.last_name},
        }
        return self.customer_id.encode(), orjson.dumps(value)

    def event(self, etype: str, **fields: Any) -> tuple[bytes, bytes]:
        body = {
            "event_id": uuid.uuid4().hex,
            "type": etype,
            "customer_id": self.customer_id,
            "ts": time.time_ns() // 1_000_000,
            **fields,
        }
        return self.customer_id.encode(), orjson.dumps(body)


@dataclass
class Stack:
    broker: Broker
    redis: RedisProcess
    receivers: Receivers
    worker: Worker
    dispatcher: Worker
    env: dict[str, str]

    @property
    def changelog(self) -> str:
        return topics.changelog_topic(self.env["KAIROS_APP_ID"])


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with start_broker() as running:
        yield running


@pytest.fixture(scope="module")
async def stack(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    await create_topics(broker.bootstrap, list(topics.ALL), partitions=4)
    redis = start_redis_process()
    config = tmp_path_factory.mktemp("forget") / "triggers.yaml"
    config.write_text(CONFIG)
    receivers = Receivers("unused", "unused")
    async with receivers.running():
        env = {
            "BROKER_URL": broker.url,
            "REDIS_URL": redis.url,
            "KAIROS_CONFIG": str(config),
            "KAIROS_APP_ID": f"forget-{uuid.uuid4().hex[:6]}",
            "KAIROS_PARTITIONS": "4",
            "KAIROS_LOG_LEVEL": "info",
            "KAIROS_CHANNEL_OVERRIDE": "webhook",  # every message to one receiver
            "KAIROS_WEBHOOK_URL": f"{receivers.url}/webhook",
            "KAIROS_WEBHOOK_SECRET": "s",
            "PYTHONUNBUFFERED": "1",
        }
        worker, dispatcher = start("worker", env), start("dispatcher", env)
        try:
            yield Stack(broker, redis, receivers, worker, dispatcher, env)
        finally:
            worker.stop()
            dispatcher.stop()
            redis.stop()


async def latest_state(s: Stack, customer_id: str) -> dict[str, Any] | None:
    """The customer's state as the newest changelog record for their key holds it."""
    records = await consume_all(s.broker.bootstrap, s.changelog, min_count=10**9, timeout=1)
    mine = [r for r in records if r.key == customer_id.encode()]
    if not mine:
        return None
    raw = mine[-1].value  # one key, one partition: consume_all orders by offset
    state = codec.decode(raw)
    return {"raw": raw, "profile": state.profile}


async def deliveries(s: Stack, customer_id: str) -> list[dict[str, Any]]:
    got = await consume_all(s.broker.bootstrap, topics.DELIVERIES, min_count=10**9, timeout=1)
    records = [orjson.loads(r.value) for r in got]
    return [r for r in records if r.get("customer_id") == customer_id]


async def outcomes(s: Stack, customer_id: str) -> list[str]:
    return [r["outcome"] for r in await deliveries(s, customer_id)]


def ledger_state(s: Stack, action_id: str) -> bytes | None:
    value: bytes | None = redis.Redis.from_url(s.redis.url).get(ledger_key(action_id))
    return value


def redis_text(s: Stack) -> bytes:
    return b"\n".join(dump_redis(s.redis.url))


async def test_forget_removes_personal_data_from_state_and_redis(stack: Stack) -> None:
    s = stack
    gone, kept = Person.make("gone"), Person.make("kept")
    await wait_until(lambda: s.worker.metric("kairos_config_generation") >= 1, 60, "the worker")
    await produce(s.broker.bootstrap, topics.PROFILES, [gone.profile(), kept.profile()])
    await produce(
        s.broker.bootstrap,
        topics.CLICKSTREAM,
        [gone.event("page_view", url="/"), kept.event("page_view", url="/")],
    )

    async def welcomed() -> bool:
        return "delivered" in await outcomes(s, gone.customer_id)

    await wait_until(welcomed, 60, "the welcome", s.worker, s.dispatcher)
    # the first purchase's welcome meets the cap of 1 a day: it waits in the Redis queue
    await produce(s.broker.bootstrap, topics.ORDERS, [gone.event("order_placed", order_id="o1")])

    async def deferred() -> bool:
        return "deferred_frequency_cap" in await outcomes(s, gone.customer_id)

    await wait_until(deferred, 60, "the capped welcome", s.worker, s.dispatcher)

    async def profile_in_state() -> bool:
        state = await latest_state(s, gone.customer_id)
        return bool(state and state["profile"] and state["profile"].email == gone.email)

    await wait_until(profile_in_state, 30, "the profile in the changelog", s.worker)
    # Before: the search finds every personal value (the message went to their address).
    before = redis_text(s)
    assert all(v.encode() in before for v in (gone.email, gone.phone, gone.first_name))
    assert gone.customer_id.encode() in before  # queue, cap history, contact keys
    webhook_bodies = b"".join(body for _, body in s.receivers.hits["/webhook"])
    assert gone.email.encode() in webhook_bodies

    (queued,) = [
        r["action_id"]
        for r in await deliveries(s, gone.customer_id)
        if r["outcome"] == "deferred_frequency_cap"
    ]
    assert ledger_state(s, queued) != b"done"

    done = kairos("forget", gone.customer_id, "--yes", env=s.env)
    assert done.returncode == 0, done.stderr
    # The command deletes what Redis holds once its tombstone is out; a dispatcher that
    # read the tombstone first has already done the same (kairos/forget.py). Either way the
    # queued message is dropped for good: checked on the ledger below.
    dropped = re.search(r"(\d+) queued message\(s\) dropped", done.stdout)
    assert dropped and int(dropped.group(1)) in (0, 1), done.stdout
    partition = int(re.search(r"partition (\d+)", done.stdout).group(1))  # type: ignore[union-attr]

    # A profile published after the tombstone, on its partition: once the dispatcher has
    # stored it, it has read the tombstone too (one partition is read in order).
    marker = Person.make("marker")
    await produce_to(s, partition, marker.profile())

    async def dispatcher_passed_tombstone() -> bool:
        return marker.email.encode() in redis_text(s)

    async def worker_forgot() -> bool:
        state = await latest_state(s, gone.customer_id)
        return bool(state and state["profile"] is None)

    await wait_until(dispatcher_passed_tombstone, 30, "the dispatcher", s.dispatcher)
    await wait_until(worker_forgot, 30, "the worker's state without the profile", s.worker)

    state = await latest_state(s, gone.customer_id)
    assert state is not None
    left_in_state = [k for k, v in gone.personal.items() if v.encode() in state["raw"]]
    assert not left_in_state, f"the worker's state still holds {left_in_state}"
    after = redis_text(s)
    left_in_redis = [k for k, v in gone.personal.items() if v.encode() in after]
    assert not left_in_redis, f"Redis still holds {left_in_redis}"
    assert gone.customer_id.encode() not in after, "a key or value still names the customer"
    assert ledger_state(s, queued) == b"done"  # a re-read action is not queued again
    assert kept.email.encode() in after  # only the forgotten customer went
    kept_state = await latest_state(s, kept.customer_id)
    assert kept_state and kept_state["profile"] and kept_state["profile"].email == kept.email


async def produce_to(s: Stack, partition: int, record: tuple[bytes, bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=s.broker.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.PROFILES, record[1], key=record[0], partition=partition)
    finally:
        await producer.stop()


def test_forget_without_a_terminal_asks_for_yes() -> None:
    done = kairos("forget", "someone", env={"BROKER_URL": "kafka://127.0.0.1:9"})
    assert done.returncode == 2
    assert done.stderr.strip() == "kairos forget: no terminal to confirm on; add --yes"


def test_forget_with_no_broker_says_so_and_changes_nothing() -> None:
    broker = f"127.0.0.1:{free_port()}"
    done = kairos("forget", "someone", "--yes", "--bootstrap", broker, env={}, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"kairos forget: could not publish the tombstone to Kafka at {broker}"
    )
    assert "nothing changed" in done.stderr and "Traceback" not in done.stderr
