"""Secrets never reach a log, personal data never reaches a metric or a log above debug.

A real ``kairos worker`` and ``kairos dispatcher`` run at debug level with every secret
the project takes from the environment: a Redis password (against a redis-server that
requires it), the webhook signing secret, SMTP credentials (the SMTP server requires
AUTH), the SMS token, the push bearer token, a Slack URL whose path is its secret (here
a closed port: the failure path) and a WeCom URL with its ``key``. Traffic makes every
channel send; then the logs, the ``deliveries`` records and both processes' /metrics
are searched for every secret (and its base64 form, as HTTP basic auth and SMTP AUTH
carry it) and for every customer's id, email, phone and name.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka_helpers import consume_all, produce
from live_stack import (
    Receivers,
    RedisProcess,
    basic_auth,
    kairos,
    log_text,
    start,
    start_redis_process,
    start_tansu,
    wait_until,
)
from workers import Worker

from kairos.launcher import Broker, create_topics, free_port, start_broker
from stream import topics

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

TAG = uuid.uuid4().hex[:8]
REDIS_PASSWORD = f"redis-pw-{TAG}"
WEBHOOK_SECRET = f"webhook-secret-{TAG}"
SMTP_USER, SMTP_PASSWORD = "mailer", f"smtp-pw-{TAG}"
SMS_SID, SMS_TOKEN = "AC42", f"sms-token-{TAG}"
PUSH_TOKEN = f"push-token-{TAG}"
SLACK_SECRET = f"slack-path-secret-{TAG}"
WECOM_KEY = f"wecom-key-{TAG}"
SECRETS = [
    REDIS_PASSWORD,
    WEBHOOK_SECRET,
    SMTP_PASSWORD,
    SMS_TOKEN,
    PUSH_TOKEN,
    SLACK_SECRET,
    WECOM_KEY,
    basic_auth(SMS_SID, SMS_TOKEN),
    basic_auth(SMTP_USER, SMTP_PASSWORD),
]

CONFIG = """
engine:
  timer_grace: 0s
policy:
  quiet_hours:
    enabled: false
  frequency_caps:
    per_day: 100
    per_hour_push: 100
triggers:
  welcome:
    channel: email
    template: "Welcome {first_name}"
  abandoned_cart:
    delay: 2s
    channel: push
  browse_abandonment:
    delay: 2s
    channel: sms
  post_purchase:
    delay: 1s
    channel: webhook
  limited_time_offer:
    channel: wecom
  nps_detractor:
    channel: slack
"""


@dataclass(frozen=True)
class Customer:
    customer_id: str
    email: str
    phone: str
    first_name: str
    last_name: str

    @property
    def personal(self) -> list[str]:
        return [self.customer_id, self.email, self.phone, self.first_name, self.last_name]


def customer(role: str) -> Customer:
    tag = uuid.uuid4().hex[:10]
    return Customer(
        f"cust-{role}-{tag}",
        f"{role}.{tag}@mail.example",
        f"+1555{int(tag, 16) % 10**7:07d}",
        f"Ann{tag}",
        f"Lee{tag}",
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(c: Customer, etype: str, **fields: object) -> tuple[bytes, bytes]:
    body = {"event_id": uuid.uuid4().hex, "type": etype, "customer_id": c.customer_id}
    return c.customer_id.encode(), orjson.dumps({**body, "ts": now_ms(), **fields})


def profile(c: Customer) -> tuple[bytes, bytes]:
    value = {
        "customer_id": c.customer_id,
        "email": c.email,
        "phone": c.phone,
        "push_token": f"device-{c.customer_id}",
        "timezone": "Europe/Berlin",
        "locale": "de-DE",
        "consent": {"email": True, "sms": True, "push": True},
        "attributes": {"first_name": c.first_name, "last_name": c.last_name},
        "updated_at": now_ms(),
    }
    return c.customer_id.encode(), orjson.dumps(value)


@dataclass
class Stack:
    broker: Broker
    redis: RedisProcess
    receivers: Receivers
    worker: Worker
    dispatcher: Worker
    customers: dict[str, Customer]


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """This module's own broker: its topics hold only this module's traffic."""
    with start_broker() as running:
        yield running


@pytest.fixture(scope="module")
async def stack(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    await create_topics(broker.bootstrap, list(topics.ALL), partitions=4)
    redis = start_redis_process(password=REDIS_PASSWORD)
    config = tmp_path_factory.mktemp("secrets") / "triggers.yaml"
    config.write_text(CONFIG)
    receivers = Receivers(SMTP_USER, SMTP_PASSWORD)
    async with receivers.running():
        env = {
            "BROKER_URL": broker.url,
            "REDIS_URL": redis.url,
            "KAIROS_CONFIG": str(config),
            "KAIROS_APP_ID": f"secrets-{TAG}",
            "KAIROS_PARTITIONS": "4",
            "KAIROS_LOG_LEVEL": "debug",
            "KAIROS_WEBHOOK_URL": f"{receivers.url}/webhook",
            "KAIROS_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "KAIROS_SMTP_HOST": "127.0.0.1",
            "KAIROS_SMTP_PORT": str(receivers.smtp_port),
            "KAIROS_SMTP_USER": SMTP_USER,
            "KAIROS_SMTP_PASSWORD": SMTP_PASSWORD,
            "KAIROS_SMTP_FROM": "shop@kairos.test",
            "KAIROS_SMS_URL": f"{receivers.url}/sms",
            "KAIROS_SMS_SID": SMS_SID,
            "KAIROS_SMS_TOKEN": SMS_TOKEN,
            "KAIROS_SMS_FROM": "+15550000000",
            "KAIROS_PUSH_URL": f"{receivers.url}/push",
            "KAIROS_PUSH_TOKEN": PUSH_TOKEN,
            # a closed port: the Slack sends fail, and failures are where URLs get quoted
            "KAIROS_SLACK_URL": f"http://127.0.0.1:{free_port()}/services/T0/B0/{SLACK_SECRET}",
            "KAIROS_WECOM_URL": f"{receivers.url}/wecom?key={WECOM_KEY}",
            "KAIROS_DELIVERY_MAX_ATTEMPTS": "2",
            "KAIROS_DELIVERY_BASE_DELAY": "0.05",
            "KAIROS_DELIVERY_MAX_DELAY": "0.1",
            "KAIROS_DELIVERY_TIMEOUT": "2",
            "KAIROS_DELIVERY_GIVE_UP_AFTER": "0",  # the failing channel ends dead at once
            "PYTHONUNBUFFERED": "1",
        }
        worker = start("worker", env)
        dispatcher = start("dispatcher", env)
        try:
            customers = {r: customer(r) for r in ("email", "push", "sms", "hook", "wecom", "nps")}
            yield Stack(broker, redis, receivers, worker, dispatcher, customers)
        finally:
            worker.stop()
            dispatcher.stop()
            redis.stop()


async def send_traffic(s: Stack) -> None:
    c = s.customers
    await produce(s.broker.bootstrap, topics.PROFILES, [profile(x) for x in c.values()])
    await produce(
        s.broker.bootstrap,
        topics.CLICKSTREAM,
        [
            event(c["email"], "page_view", url="/"),
            event(c["push"], "add_to_cart", product_id="sku-1", price=10.0),
            event(c["sms"], "product_view", product_id="sku-2", category="shoes"),
            event(c["sms"], "product_view", product_id="sku-2", category="shoes"),
            *[event(c["wecom"], "product_view", product_id="sku-3") for _ in range(3)],
        ],
    )
    await produce(
        s.broker.bootstrap,
        topics.ORDERS,
        [
            event(c["hook"], "order_placed", order_id=f"o-{TAG}", total=30.0),
            event(c["hook"], "order_paid", order_id=f"o-{TAG}"),
        ],
    )
    await produce(s.broker.bootstrap, topics.ENGAGEMENT, [event(c["nps"], "nps", score=2)])


async def deliveries(s: Stack) -> list[dict]:
    got = await consume_all(s.broker.bootstrap, topics.DELIVERIES, min_count=10**9, timeout=1)
    return [orjson.loads(r.value) for r in got]


@pytest.fixture(scope="module")
async def traffic_done(stack: Stack) -> list[dict]:
    """Every channel has sent (Slack has failed); returns the deliveries records."""
    s = stack
    await wait_until(lambda: s.worker.metric("kairos_config_generation") >= 1, 60, "the worker")
    await send_traffic(s)

    async def every_channel_answered() -> list[dict] | None:
        records = await deliveries(s)
        done = {r["channel"] for r in records if r["outcome"] == "delivered"}
        failed = {r["channel"] for r in records if r["outcome"] in ("dead", "failed")}
        wanted = {"email", "push", "sms", "webhook", "wecom"}
        return records if wanted <= done and "slack" in failed else None

    return await wait_until(
        every_channel_answered, 90, "a delivery on every channel", s.worker, s.dispatcher
    )


async def test_no_secret_reaches_a_log_or_a_record(stack: Stack, traffic_done: list[dict]) -> None:
    s = stack
    # the secrets were used for real: SMTP AUTH passed, the SMS provider got basic auth
    assert (SMTP_USER.encode(), SMTP_PASSWORD.encode()) in s.receivers.logins
    sms_headers = s.receivers.hits["/sms"][0][0]
    assert sms_headers["Authorization"] == f"Basic {basic_auth(SMS_SID, SMS_TOKEN)}"
    assert s.receivers.hits["/webhook"][0][0]["X-Kairos-Signature"].startswith("sha256=")
    logs = {"worker": log_text(s.worker), "dispatcher": log_text(s.dispatcher)}
    for name, text in logs.items():
        assert "[DEBUG]" in text, f"the {name} did not log at debug level"
        assert re.search(r"\[(INFO|WARNING)\]", text), name
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{name} log contains {leaked}"
    records = orjson.dumps(traffic_done).decode()
    assert not [secret for secret in SECRETS if secret in records]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


async def test_metrics_carry_no_customer_data(stack: Stack, traffic_done: list[dict]) -> None:
    s = stack
    for process in (s.worker, s.dispatcher):
        text = scrape(process.metrics_port)
        assert "kairos_events_consumed_total" in text or "kairos_deliveries_total" in text
        for c in s.customers.values():
            found = [value for value in c.personal if value in text]
            assert not found, f"/metrics of {process.process.args[-1]} shows {found}"


def above_debug(text: str) -> str:
    """The lines logged at INFO or higher (a traceback belongs to the line it follows)."""
    kept, keep = [], True  # a line before the log format is set up counts as above debug
    for line in text.splitlines():
        level = re.match(r"\[[^\]]*\] \[\d+\] \[([A-Z]+)\]", line)
        if level:
            keep = level.group(1) != "DEBUG"
        if keep:
            kept.append(line)
    return "\n".join(kept)


async def test_logs_above_debug_carry_no_personal_data(
    stack: Stack, traffic_done: list[dict]
) -> None:
    s = stack
    for process in (s.worker, s.dispatcher):
        text = above_debug(log_text(process))
        for c in s.customers.values():
            found = [value for value in c.personal if value in text]
            assert not found, f"{process.process.args[-1]} logs {found} above debug:\n{text}"


def test_a_worker_refused_by_sasl_logs_the_failure_not_the_password(tmp_path: Path) -> None:
    """The failure path of Kafka authentication, against a broker that requires SASL.

    Tansu 0.6 offers only SCRAM and keeps its users in its storage, which a memory-only
    broker cannot be given before authentication is required (``tansu user create`` must
    itself authenticate), so every login is refused here: a SASL success cannot be tested
    on this broker. What is tested: the settings reach the client (a SCRAM exchange runs,
    where a plaintext client would only be disconnected) and the password, read from a
    file, appears nowhere in what the worker prints at debug level.
    """
    broker = start_tansu("--authentication")
    password = f"sasl-pw-{TAG}"
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text(password + "\n")
    env = {
        "BROKER_URL": broker.url,
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
        "KAIROS_APP_ID": f"sasl-{TAG}",
        "KAIROS_LOG_LEVEL": "debug",
        "KAIROS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAIROS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAIROS_KAFKA_SASL_USERNAME": "kairos",
        "KAIROS_KAFKA_SASL_PASSWORD_FILE": str(secret_file),
    }
    try:
        done = kairos("worker", env=env, timeout=120)
    finally:
        broker.stop()
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "_do_sasl_handshake" in output or "SaslAuthenticationFailed" in output, output[-3000:]
    forms = [password, basic_auth("kairos", password), REDIS_PASSWORD]
    assert not [form for form in forms if form in output]


def test_triggers_command_never_prints_the_redis_password(stack: Stack) -> None:
    shown = kairos("triggers", "list", "--redis", stack.redis.url, env={})
    assert shown.returncode == 0, shown.stderr
    assert "live override(s) from redis://:***@" in shown.stdout
    down = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    for args in (["list"], ["disable", "welcome"]):
        failed = kairos("triggers", *args, "--redis", down, env={})
        assert "redis://:***@" in failed.stderr, failed.stderr
        assert REDIS_PASSWORD not in failed.stdout + failed.stderr
