"""``kairos dispatcher`` as a subprocess against a real broker, Redis, SMTP and HTTP servers.

Tests publish records to ``actions`` (and ``profiles`` / ``engagement`` for the contact
directory) directly, and assert on ``deliveries`` and on what reached the servers, which
count requests per ``action_id``. One dispatcher serves the module; the crash test runs
its own so it can SIGKILL it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from deliveries_reader import FINAL, Deliveries
from kafka_helpers import produce
from redis.asyncio import Redis

from channels.idempotency import ledger_key
from kairos.launcher import free_port

pytestmark = pytest.mark.integration

ACTION_ID = re.compile(rb"act-[0-9a-f]{12}")
ROOT = Path(__file__).resolve().parents[2]
KAIROS = str(Path(sys.executable).with_name("kairos"))

CONFIG = """
policy:
  frequency_caps:
    per_day: 3
    per_hour_push: 1
  priority_window: 10m
triggers:
  abandoned_cart:
    template: "Your cart {action_id}\\n{item_count} item(s) worth {cart_value} {currency}, ref {action_id}"
  browse_abandonment:
    template: "Still thinking about {product_id}? {action_id}"
  limited_time_offer:
    template: "Offer {action_id} for {first_name}"
  win_back:
    template: "We miss you {action_id}"
  churn_alert:
    template: "Customer {customer_id} at risk {action_id}"
  welcome:
    enabled: false
"""


# --- the receiving side: HTTP providers and an SMTP server ------------------------


class Servers:
    """Every HTTP channel's endpoint on one aiohttp app, plus the SMTP mailbox."""

    def __init__(self) -> None:
        self.hits: dict[str, list[tuple[str, float, bytes]]] = defaultdict(list)
        self.script: dict[str, list[int]] = {}  # action_id -> statuses, the last repeats
        self.url = ""

    def count(self, action_id: str) -> int:
        return len(self.hits[action_id])

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        found = ACTION_ID.search(body) or ACTION_ID.search(
            request.headers.get("X-Kairos-Action-Id", "").encode()
        )
        action_id = found.group().decode() if found else "?"
        n = len(self.hits[action_id])
        self.hits[action_id].append((request.path, time.time(), body))
        statuses = self.script.get(action_id, [200])
        status = statuses[min(n, len(statuses) - 1)]
        if request.path == "/wecom" and status == 200:
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        return web.Response(status=status, text="ok" if status == 200 else "unavailable")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = ACTION_ID.search(envelope.content)
        action_id = found.group().decode() if found else "?"
        self.hits[action_id].append(("smtp", time.time(), envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[Servers]:
    s = Servers()
    app = web.Application()
    app.router.add_post("/{channel}", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    s.url = f"http://127.0.0.1:{port}"
    smtp = Controller(s, hostname="127.0.0.1", port=free_port())
    smtp.start()
    s.smtp_port = smtp.port  # type: ignore[attr-defined]
    yield s
    smtp.stop()
    await runner.cleanup()


# --- the dispatcher process and the deliveries topic -------------------------------


def dispatcher_env(
    bootstrap: str, redis_url: str, servers: Servers, config: Path, **extra: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BROKER_URL=f"kafka://{bootstrap}",
        REDIS_URL=redis_url,
        KAIROS_SESSION_TIMEOUT="6",
        KAIROS_PARTITIONS="4",
        KAIROS_CONFIG=str(config),
        KAIROS_APP_ID=f"test-{uuid.uuid4().hex[:8]}",
        KAIROS_DISPATCHER_METRICS_PORT="0",
        KAIROS_WEBHOOK_URL=f"{servers.url}/webhook",
        KAIROS_WEBHOOK_SECRET="s3cret",
        KAIROS_SMTP_HOST="127.0.0.1",
        KAIROS_SMTP_PORT=str(servers.smtp_port),  # type: ignore[attr-defined]
        KAIROS_SMTP_FROM="shop@kairos.test",
        KAIROS_SMS_URL=f"{servers.url}/sms",
        KAIROS_SMS_SID="AC1",
        KAIROS_SMS_TOKEN="tok",
        KAIROS_SMS_FROM="+15550000000",
        KAIROS_PUSH_URL=f"{servers.url}/push",
        KAIROS_PUSH_TOKEN="bearer",
        KAIROS_SLACK_URL=f"{servers.url}/slack",
        KAIROS_WECOM_URL=f"{servers.url}/wecom",
        KAIROS_DELIVERY_MAX_ATTEMPTS="3",
        KAIROS_DELIVERY_BASE_DELAY="0.05",
        KAIROS_DELIVERY_MAX_DELAY="0.2",
        KAIROS_DELIVERY_TIMEOUT="2",
        KAIROS_CIRCUIT_FAILURES="3",
        KAIROS_CIRCUIT_COOLDOWN="60",
        KAIROS_DELIVERY_GIVE_UP_AFTER="0",  # dead at the end of the first round (the
        # default retries in later rounds: test_a_provider_down_gets_the_message_later)
        KAIROS_CHANNEL_CONCURRENCY="4",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_dispatcher(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [KAIROS, "dispatcher"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_action(
    trigger: str, channel: str, customer: str, status: str = "send", **payload: Any
) -> dict[str, Any]:
    return {
        "action_id": f"act-{uuid.uuid4().hex[:12]}",
        "trigger": trigger,
        "customer_id": customer,
        "channel": channel,
        "decided_at": int(time.time() * 1000),
        "status": status,
        "reason": "test",
        "payload": {"item_count": 2, "cart_value": 59.9, "currency": "EUR", **payload},
        "source_event_ids": ["e1"],
    }


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:10]}"


async def publish(bootstrap: str, topic: str, *records: dict[str, Any]) -> None:
    await produce(bootstrap, topic, [(r["customer_id"].encode(), orjson.dumps(r)) for r in records])


async def publish_profile(bootstrap: str, customer_id: str, **profile: Any) -> None:
    await produce(bootstrap, "profiles", [(customer_id.encode(), orjson.dumps(profile))])


async def ledger_done(url: str, action_id: str, timeout: float = 10.0) -> None:
    client = Redis.from_url(url)
    try:
        deadline = time.monotonic() + timeout
        while await client.get(ledger_key(action_id)) != b"done":
            assert time.monotonic() < deadline, f"{action_id} never reached done in the ledger"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


def redis_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture(scope="module")
async def deliveries(bootstrap: str) -> AsyncIterator[Deliveries]:
    reader = Deliveries(bootstrap)
    await reader.start()
    yield reader
    await reader.stop()


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dispatcher") / "triggers.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
async def dispatcher(
    bootstrap: str,
    redis_url: str,
    servers: Servers,
    deliveries: Deliveries,
    config_file: Path,
) -> AsyncIterator[subprocess.Popen[bytes]]:
    env = dispatcher_env(bootstrap, redis_db(redis_url, 1), servers, config_file)
    log = config_file.with_name("dispatcher.log")
    proc = start_dispatcher(env, log)
    try:
        probe = make_action("churn_alert", "webhook", customer())
        await publish(bootstrap, "actions", probe)
        await deliveries.outcomes(probe["action_id"], "delivered", timeout=40)
        yield proc
    except AssertionError:
        print(log.read_text()[-3000:])
        raise
    finally:
        stop(proc)


# --- crash between delivery and commit ------------------------------------------------


async def test_sigkill_after_delivery_before_commit_sends_no_duplicate(
    bootstrap: str,
    redis_url: str,
    servers: Servers,
    deliveries: Deliveries,
    config_file: Path,
) -> None:
    # First in the module, before the shared dispatcher starts (it would deliver the action
    # too). Offsets are committed every 5 minutes: the kill always lands before the commit.
    env = dispatcher_env(
        bootstrap, redis_db(redis_url, 1), servers, config_file, KAIROS_COMMIT_INTERVAL="300"
    )
    log = config_file.with_name("crash.log")
    action = make_action("churn_alert", "webhook", customer())
    proc = start_dispatcher(env, log)
    try:
        await publish(bootstrap, "actions", action)
        assert await deliveries.outcomes(action["action_id"], *FINAL, timeout=40) == ["delivered"]
        # Killed once the ledger says done: a kill between the record's publish and ``done``
        # re-publishes the (identical) record, by design (``channels/idempotency.py``).
        await ledger_done(redis_db(redis_url, 1), action["action_id"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start_dispatcher(env, log)  # same group: reads the uncommitted action again
        marker = make_action("churn_alert", "webhook", action["customer_id"])  # same partition
        await publish(bootstrap, "actions", marker)
        await deliveries.outcomes(marker["action_id"], "delivered", timeout=40)
    finally:
        stop(proc)
    assert servers.count(action["action_id"]) == 1
    assert [r["outcome"] for r in deliveries.by_action[action["action_id"]]] == ["delivered"]


async def test_a_provider_down_gets_the_message_later_not_never(
    bootstrap: str,
    redis_url: str,
    servers: Servers,
    deliveries: Deliveries,
    config_file: Path,
) -> None:
    # Its own dispatcher (before the shared one starts): the default give-up period, and a
    # 1 s circuit cooldown so the second round comes quickly.
    env = dispatcher_env(
        bootstrap,
        redis_db(redis_url, 1),
        servers,
        config_file,
        KAIROS_DELIVERY_GIVE_UP_AFTER="3600",
        KAIROS_CIRCUIT_COOLDOWN="1",
    )
    log = config_file.with_name("later.log")
    action = make_action("churn_alert", "webhook", customer())
    servers.script[action["action_id"]] = [503, 503, 503, 200]  # a first round all refused
    proc = start_dispatcher(env, log)
    try:
        await publish(bootstrap, "actions", action)
        outcomes = await deliveries.outcomes(action["action_id"], *FINAL, timeout=40)
    finally:
        stop(proc)
    assert outcomes == ["retrying", "retrying", "retrying", "delivered"], log.read_text()[-2000:]
    later = deliveries.by_action[action["action_id"]][2]
    assert later["deliver_at"] is not None and "provider unavailable" in later["reason"]
    assert servers.count(action["action_id"]) == 4  # three refused, one accepted
    assert deliveries.last(action["action_id"])["maybe_resent"] is False


# --- channels ----------------------------------------------------------------------


async def test_every_channel_delivers_once_through_the_dispatcher(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    actions = []
    for channel in ("webhook", "email", "sms", "push", "slack", "wecom", "console"):
        cid = customer()
        await publish_profile(
            bootstrap,
            cid,
            email=f"{cid}@example.com",
            phone="+15551234567",
            push_token="tok-1",
            attributes={"first_name": "Ana"},
        )
        actions.append(make_action("abandoned_cart", channel, cid))
    await asyncio.sleep(0.5)  # profiles first: the directory gives email, phone, token
    await publish(bootstrap, "actions", *actions)
    for action in actions:
        outcomes = await deliveries.outcomes(action["action_id"], *FINAL)
        assert outcomes == ["delivered"], (action["channel"], deliveries.last(action["action_id"]))
        expected = 0 if action["channel"] == "console" else 1
        assert servers.count(action["action_id"]) == expected, action["channel"]
    email = next(a for a in actions if a["channel"] == "email")
    (_, _, raw) = servers.hits[email["action_id"]][0]
    assert f"Subject: Your cart {email['action_id']}".encode() in raw
    assert b"2 item(s) worth 59.90 EUR" in raw  # amounts in the currency's decimals
    assert f"To: {email['customer_id']}@example.com".encode() in raw


# --- retries, failures, the circuit breaker -----------------------------------------


async def test_server_errors_are_retried_until_delivered(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    action = make_action("churn_alert", "webhook", customer())
    servers.script[action["action_id"]] = [503, 503, 200]
    await publish(bootstrap, "actions", action)
    outcomes = await deliveries.outcomes(action["action_id"], *FINAL)
    assert outcomes == ["retrying", "retrying", "delivered"]
    assert deliveries.last(action["action_id"])["attempts"] == 3
    assert servers.count(action["action_id"]) == 3


async def test_rejected_message_fails_after_one_attempt(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    action = make_action("churn_alert", "webhook", customer())
    servers.script[action["action_id"]] = [400]
    await publish(bootstrap, "actions", action)
    assert await deliveries.outcomes(action["action_id"], *FINAL) == ["failed"]
    assert "HTTP 400" in deliveries.last(action["action_id"])["error"]


async def test_failing_channel_gives_up_dead_with_the_error_after_the_last_attempt(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    cid = customer()
    await publish_profile(bootstrap, cid, phone="+15551234567")
    await asyncio.sleep(0.3)
    action = make_action("abandoned_cart", "sms", cid)
    servers.script[action["action_id"]] = [503]
    await publish(bootstrap, "actions", action)
    assert await deliveries.outcomes(action["action_id"], *FINAL) == [
        "retrying",
        "retrying",
        "dead",
    ]
    last = deliveries.last(action["action_id"])
    assert last["attempts"] == 3 and last["error"].startswith("HTTP 503")


async def test_open_circuit_stops_calling_the_provider_and_gives_up(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    first = make_action("churn_alert", "slack", customer())
    second = make_action("churn_alert", "slack", customer())
    servers.script[first["action_id"]] = [503]
    await publish(bootstrap, "actions", first)
    assert (await deliveries.outcomes(first["action_id"], *FINAL))[-1] == "dead"
    await publish(bootstrap, "actions", second)
    assert await deliveries.outcomes(second["action_id"], *FINAL) == ["dead"]
    last = deliveries.last(second["action_id"])
    assert last["error"].startswith("circuit open for slack") and last["attempts"] == 0
    assert servers.count(second["action_id"]) == 0


# --- contact policy -----------------------------------------------------------------


async def test_quiet_hours_action_is_held_until_deliver_at_then_sent(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    deliver_at = int(time.time() * 1000) + 2500
    action = make_action(
        "churn_alert", "webhook", customer(), "deferred_quiet_hours", deliver_at=deliver_at
    )
    await publish(bootstrap, "actions", action)
    outcomes = await deliveries.outcomes(action["action_id"], *FINAL)
    assert outcomes == ["deferred_quiet_hours", "delivered"]
    assert deliveries.by_action[action["action_id"]][0]["deliver_at"] == deliver_at
    (_, received_at, _) = servers.hits[action["action_id"]][0]
    assert received_at * 1000 >= deliver_at


async def test_frequency_cap_defers_the_next_push_and_drops_an_expiring_offer(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    cid = customer()
    await publish_profile(bootstrap, cid, push_token="tok-9")
    await asyncio.sleep(0.3)
    first = make_action("abandoned_cart", "push", cid)
    await publish(bootstrap, "actions", first)
    assert await deliveries.outcomes(first["action_id"], *FINAL) == ["delivered"]

    later = make_action("browse_abandonment", "push", cid, product_id="p1")
    now = int(time.time() * 1000)
    offer = make_action("win_back", "push", cid, code="X", expires_at=now + 10 * 60_000)
    await publish(bootstrap, "actions", later, offer)
    await deliveries.outcomes(later["action_id"], "deferred_frequency_cap")
    await deliveries.outcomes(offer["action_id"], "suppressed_frequency_cap")
    deferred = deliveries.last(later["action_id"])
    hour = 3600 * 1000
    assert first_delivered_at(deliveries, first) + hour - 5000 <= deferred["deliver_at"]
    assert "per_hour_push" in deferred["reason"]
    assert "expires" in deliveries.last(offer["action_id"])["reason"]
    assert servers.count(later["action_id"]) == 0 and servers.count(offer["action_id"]) == 0


def first_delivered_at(deliveries: Deliveries, action: dict[str, Any]) -> int:
    return next(r["at"] for r in deliveries.by_action[action["action_id"]])


async def test_higher_priority_trigger_wins_and_the_loser_is_suppressed(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    cid = customer()
    await publish_profile(bootstrap, cid, email=f"{cid}@example.com", push_token="tok")
    await asyncio.sleep(0.3)
    offer = make_action("limited_time_offer", "email", cid, product_id="p1", code="C")
    await publish(bootstrap, "actions", offer)
    assert await deliveries.outcomes(offer["action_id"], *FINAL) == ["delivered"]
    cart = make_action("abandoned_cart", "push", cid)
    await publish(bootstrap, "actions", cart)
    assert await deliveries.outcomes(cart["action_id"], *FINAL) == ["suppressed_priority"]
    assert "limited_time_offer" in deliveries.last(cart["action_id"])["reason"]
    assert servers.count(cart["action_id"]) == 0


async def test_trigger_disabled_since_the_decision_is_not_sent(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    action = make_action("welcome", "webhook", customer())
    await publish(bootstrap, "actions", action)
    assert await deliveries.outcomes(action["action_id"], *FINAL) == ["disabled"]
    assert servers.count(action["action_id"]) == 0


async def test_consent_withdrawn_since_the_decision_is_respected(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    no_email, unsubscribed = customer(), customer()
    await publish_profile(
        bootstrap, no_email, email="x@example.com", consent={"email": False, "push": True}
    )
    await publish_profile(bootstrap, unsubscribed, push_token="tok")
    unsubscribe = {
        "event_id": uuid.uuid4().hex,
        "type": "unsubscribe",
        "customer_id": unsubscribed,
        "ts": int(time.time() * 1000),
        "channel": "all",
    }
    await publish(bootstrap, "engagement", unsubscribe)
    await asyncio.sleep(0.5)
    a = make_action("abandoned_cart", "email", no_email)
    b = make_action("abandoned_cart", "push", unsubscribed)
    await publish(bootstrap, "actions", a, b)
    assert await deliveries.outcomes(a["action_id"], *FINAL) == ["suppressed_consent"]
    assert await deliveries.outcomes(b["action_id"], *FINAL) == ["suppressed_consent"]
    assert servers.count(a["action_id"]) == servers.count(b["action_id"]) == 0


async def test_the_same_action_published_twice_is_delivered_once(
    bootstrap: str, servers: Servers, deliveries: Deliveries, dispatcher: Any
) -> None:
    action = make_action("churn_alert", "webhook", customer())
    await publish(bootstrap, "actions", action)
    assert await deliveries.outcomes(action["action_id"], *FINAL) == ["delivered"]
    marker = make_action("churn_alert", "webhook", customer())
    await publish(bootstrap, "actions", action, marker)
    await deliveries.outcomes(marker["action_id"], *FINAL)
    assert servers.count(action["action_id"]) == 1
    assert [r["outcome"] for r in deliveries.by_action[action["action_id"]]] == ["delivered"]
