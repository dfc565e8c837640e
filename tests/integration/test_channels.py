"""Channels against real servers: aiohttp apps on loopback ports and an aiosmtpd SMTP server.

Each fake provider records exactly what reached it (method, path, headers, raw body) and
answers from a script, so tests assert on the wire format and on how many requests a
retry or an open circuit really caused.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import REGISTRY

from channels.providers.base import DeliveryError, Message
from channels.providers.console import ConsoleChannel
from channels.providers.email import EmailChannel
from channels.providers.push import PushChannel
from channels.providers.settings import SettingsError, channel_from_env
from channels.providers.slack import SlackChannel
from channels.providers.sms import SmsChannel
from channels.providers.webhook import WebhookChannel, verify_signature
from channels.providers.wecom import WeComChannel
from channels.resilience import ChannelPool, CircuitBreaker, DeliveryOutcome, RetryPolicy, deliver

pytestmark = pytest.mark.integration

SECRET = "s3cret"
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, attempt_timeout_s=1.0)


def make_message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "action_id": "act-1f3a",
        "channel": "webhook",
        "customer_id": "cust-42",
        "trigger": "abandoned_cart",
        "subject": "You left something behind",
        "body": "Your cart is waiting: 2 items, 59.90 EUR.",
        "to": "ana@example.com",
        "payload": {"cart_value": 59.9, "items": 2, "coupon": "BACK10"},
        "created_at": 1_764_488_400_000,
    }
    fields.update(overrides)
    return Message(**fields)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- a scripted HTTP provider ------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Provider:
    """Answers with ``script[i]`` for the i-th request; the last entry repeats."""

    url: str = ""
    script: list[tuple[int, bytes]] = field(default_factory=lambda: [(200, b"ok")])
    delays: list[float] = field(default_factory=lambda: [0.0])
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def answer(self, *script: tuple[int, bytes | str | dict[str, Any]]) -> None:
        self.script = [
            (status, body if isinstance(body, bytes) else _encode(body)) for status, body in script
        ]

    @property
    def hits(self) -> int:
        return len(self.received)

    def json(self, i: int = -1) -> Any:
        return orjson.loads(self.received[i].body)

    async def handle(self, request: web.Request) -> web.Response:
        n = len(self.received)
        body = await request.read()
        self.received.append(
            Received(request.method, request.path_qs, dict(request.headers), body, time.monotonic())
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delays[min(n, len(self.delays) - 1)])
            status, payload = self.script[min(n, len(self.script) - 1)]
            return web.Response(status=status, body=payload)
        finally:
            self.in_flight -= 1


def _encode(body: str | dict[str, Any]) -> bytes:
    return body.encode() if isinstance(body, str) else orjson.dumps(body)


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    p = Provider()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", p.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    p.url = f"http://{host}:{port}/hooks/kairos"
    yield p
    await runner.cleanup()


# --- a recording SMTP server ---------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], EmailMessage]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(b"kairos", b"pa55")
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # unhandled failure: server sends 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def smtp_auth() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        auth_required=True,
        auth_require_tls=False,
        authenticator=box.authenticate,
    )
    controller.start()
    yield box, controller.port
    controller.stop()


# --- wire formats --------------------------------------------------------------------


async def test_webhook_posts_the_message_as_signed_json(provider: Provider) -> None:
    async with WebhookChannel(provider.url, SECRET) as channel:
        await channel.send(make_message())

    got = provider.received[0]
    assert (got.method, got.path) == ("POST", "/hooks/kairos")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Kairos-Action-Id"] == "act-1f3a"
    assert orjson.loads(got.body) == {
        "action_id": "act-1f3a",
        "channel": "webhook",
        "customer_id": "cust-42",
        "trigger": "abandoned_cart",
        "subject": "You left something behind",
        "body": "Your cart is waiting: 2 items, 59.90 EUR.",
        "to": "ana@example.com",
        "payload": {"cart_value": 59.9, "items": 2, "coupon": "BACK10"},
        "created_at": 1_764_488_400_000,
    }
    ts = got.headers["X-Kairos-Timestamp"]
    assert abs(int(ts) - time.time()) < 5
    assert got.headers["X-Kairos-Signature"].startswith("sha256=")
    assert verify_signature(
        SECRET, ts, got.body, got.headers["X-Kairos-Signature"], now=time.time()
    )


async def test_webhook_signature_rejects_tampering_replay_and_wrong_secret(
    provider: Provider,
) -> None:
    sent_at = 1_764_488_400
    async with WebhookChannel(provider.url, SECRET, clock=lambda: sent_at) as channel:
        await channel.send(make_message())
    got = provider.received[0]
    ts, sig = got.headers["X-Kairos-Timestamp"], got.headers["X-Kairos-Signature"]
    assert ts == str(sent_at)

    assert verify_signature(SECRET, ts, got.body, sig, now=sent_at + 299)
    tampered = got.body.replace(b"59.9", b"0.01")
    assert tampered != got.body
    assert not verify_signature(SECRET, ts, tampered, sig, now=sent_at)
    assert not verify_signature(SECRET, ts, got.body, sig, now=sent_at + 301)  # replayed late
    assert not verify_signature(SECRET, ts, got.body, sig, now=sent_at - 301)  # from the future
    assert not verify_signature(SECRET, str(sent_at + 1), got.body, sig, now=sent_at)
    assert not verify_signature("other", ts, got.body, sig, now=sent_at)
    assert not verify_signature(SECRET, "not-a-time", got.body, sig, now=sent_at)


async def test_sms_posts_twilio_style_form_with_basic_auth(provider: Provider) -> None:
    provider.answer((201, {"sid": "SM123", "status": "queued"}))
    msg = make_message(channel="sms", to="+4915112345678")
    async with SmsChannel(provider.url, "AC42", "tok", "+4930123456") as channel:
        await channel.send(msg)

    got = provider.received[0]
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert got.headers["Authorization"] == "Basic " + base64.b64encode(b"AC42:tok").decode()
    assert parse_qs(got.body.decode(), strict_parsing=True) == {
        "To": ["+4915112345678"],
        "From": ["+4930123456"],
        "Body": ["Your cart is waiting: 2 items, 59.90 EUR."],
    }


async def test_push_posts_an_fcm_v1_message_with_string_data(provider: Provider) -> None:
    msg = make_message(channel="push", to="device-token-xyz", payload={"n": 2, "url": "/cart"})
    async with PushChannel(provider.url, "ya29.token") as channel:
        await channel.send(msg)

    got = provider.received[0]
    assert got.headers["Authorization"] == "Bearer ya29.token"
    assert got.headers["Content-Type"] == "application/json"
    assert provider.json() == {
        "message": {
            "token": "device-token-xyz",
            "notification": {
                "title": "You left something behind",
                "body": "Your cart is waiting: 2 items, 59.90 EUR.",
            },
            "data": {
                "n": "2",
                "url": "/cart",
                "action_id": "act-1f3a",
                "trigger": "abandoned_cart",
            },
        }
    }


async def test_slack_posts_text_and_blocks(provider: Provider) -> None:
    msg = make_message(channel="slack", body="Cart <b> & co", to="")
    async with SlackChannel(provider.url) as channel:
        await channel.send(msg)

    assert provider.json() == {
        "text": "You left something behind: Cart &lt;b&gt; &amp; co",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "You left something behind"},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "Cart &lt;b&gt; &amp; co"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "trigger `abandoned_cart` · customer `cust-42` · action `act-1f3a`",
                    }
                ],
            },
        ],
    }


async def test_wecom_posts_markdown_and_reads_errcode(provider: Provider) -> None:
    provider.answer(
        (200, {"errcode": 0, "errmsg": "ok"}),
        (200, {"errcode": 93000, "errmsg": "invalid webhook url"}),
        (200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
    )
    async with WeComChannel(provider.url) as channel:
        await channel.send(make_message(channel="wecom"))
        assert provider.json(0) == {
            "msgtype": "markdown",
            "markdown": {
                "content": "**You left something behind**\n"
                "Your cart is waiting: 2 items, 59.90 EUR.\n"
                '<font color="comment">abandoned_cart · act-1f3a</font>'
            },
        }
        with pytest.raises(DeliveryError) as rejected:
            await channel.send(make_message(channel="wecom"))
        assert not rejected.value.retryable
        assert "93000" in rejected.value.reason
        with pytest.raises(DeliveryError) as limited:
            await channel.send(make_message(channel="wecom"))
        assert limited.value.retryable


async def test_console_prints_one_line_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    await ConsoleChannel().send(make_message(channel="console", body="two\nlines"))
    out = capsys.readouterr().out
    assert out == (
        "SENT 2025-11-30T07:40:00Z console -> ana@example.com customer=cust-42 [abandoned_cart] "
        "act-1f3a: You left something behind | two lines\n"
    )


async def test_email_reaches_smtp_with_subject_body_and_action_headers(
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    channel = EmailChannel("127.0.0.1", port, from_addr="shop@kairos.test", timeout_s=5)
    await channel.send(make_message(channel="email", payload={"html": "<p>Your cart</p>"}))

    [(mail_from, rcpt_tos, mail)] = box.envelopes
    assert mail_from == "shop@kairos.test"
    assert rcpt_tos == ["ana@example.com"]
    assert mail["Subject"] == "You left something behind"
    assert mail["To"] == "ana@example.com"
    assert mail["Message-ID"] == "<kairos.act-1f3a@kairos.test>"
    assert mail["X-Kairos-Action-Id"] == "act-1f3a"
    assert mail["X-Kairos-Trigger"] == "abandoned_cart"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().strip() == "Your cart is waiting: 2 items, 59.90 EUR."
    assert html.get_content().strip() == "<p>Your cart</p>"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_email_authenticates_and_bad_credentials_are_not_retried(
    smtp_auth: tuple[Mailbox, int],
) -> None:
    box, port = smtp_auth
    good = EmailChannel(
        "127.0.0.1", port, from_addr="shop@kairos.test", username="kairos", password="pa55"
    )
    await good.send(make_message(channel="email"))
    assert box.logins == ["kairos"]
    assert len(box.envelopes) == 1

    bad = EmailChannel(
        "127.0.0.1", port, from_addr="shop@kairos.test", username="kairos", password="wrong"
    )
    result = await deliver(bad, make_message(channel="email"), FAST, CircuitBreaker("email"))
    assert (result.outcome, result.attempts) == ("failed", 1)
    assert result.error is not None and "535" in result.error
    assert len(box.envelopes) == 1


@pytest.mark.parametrize(
    "broken", [{"to": ""}, {"subject": "Hi\nBcc: everyone@example.com"}], ids=["no_to", "crlf"]
)
async def test_unsendable_email_is_rejected_before_connecting(broken: dict[str, str]) -> None:
    channel = EmailChannel("127.0.0.1", free_port(), from_addr="shop@kairos.test")
    with pytest.raises(DeliveryError) as err:
        await channel.send(make_message(channel="email", **broken))
    assert not err.value.retryable


# --- retries, timeouts, dead and failed ----------------------------------------------


async def test_server_errors_are_retried_with_backoff_until_delivered(provider: Provider) -> None:
    provider.answer((500, "boom"), (502, "bad gateway"), (200, "ok"))
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.02, max_delay_s=1.0, attempt_timeout_s=1)
    retries_before = metric("kairos_delivery_retries_total", channel="webhook")
    seen: list[DeliveryOutcome] = []

    async with WebhookChannel(provider.url, SECRET) as channel:
        result = await deliver(
            channel,
            make_message(),
            policy,
            CircuitBreaker("webhook"),
            on_retry=seen.append,
            rng=lambda: 1.0,  # the top of the jitter range: waits of 0.02 s then 0.04 s
        )

    assert (result.outcome, result.attempts, result.error) == ("delivered", 3, None)
    assert result.to_record().keys() == {
        "action_id",
        "channel",
        "outcome",
        "attempts",
        "latency_ms",
        "error",
        "at",
    }
    assert provider.hits == 3
    gaps = [b.at - a.at for a, b in zip(provider.received, provider.received[1:], strict=False)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04
    assert [(r.outcome, r.attempts, r.error) for r in seen] == [
        ("retrying", 1, "HTTP 500: boom"),
        ("retrying", 2, "HTTP 502: bad gateway"),
    ]
    assert metric("kairos_delivery_retries_total", channel="webhook") == retries_before + 2


async def test_rate_limited_429_is_retried(provider: Provider) -> None:
    provider.answer((429, "slow down"), (200, "ok"))
    async with SlackChannel(provider.url) as channel:
        result = await deliver(channel, make_message(), FAST, CircuitBreaker("slack"))
    assert (result.outcome, result.attempts) == ("delivered", 2)


async def test_client_error_fails_after_one_attempt(provider: Provider) -> None:
    provider.answer((400, "invalid_payload"))
    failed_before = metric("kairos_deliveries_total", channel="slack", outcome="failed")
    async with SlackChannel(provider.url) as channel:
        result = await deliver(channel, make_message(), FAST, CircuitBreaker("slack"))
    assert (result.outcome, result.attempts) == ("failed", 1)
    assert result.error == "HTTP 400: invalid_payload"
    assert provider.hits == 1
    assert metric("kairos_deliveries_total", channel="slack", outcome="failed") == failed_before + 1


async def test_always_failing_provider_ends_dead_with_the_last_error(provider: Provider) -> None:
    provider.answer((503, "down for maintenance"))
    dead_before = metric("kairos_deliveries_total", channel="push", outcome="dead")
    async with PushChannel(provider.url, "t") as channel:
        result = await deliver(channel, make_message(to="tok"), FAST, CircuitBreaker("push"))
    assert (result.outcome, result.attempts) == ("dead", 3)
    assert result.error == "HTTP 503: down for maintenance"
    assert provider.hits == 3
    assert metric("kairos_deliveries_total", channel="push", outcome="dead") == dead_before + 1


async def test_slow_answer_times_out_and_is_retried(provider: Provider) -> None:
    provider.delays = [0.5, 0.0]
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.01, attempt_timeout_s=0.1)
    seen: list[DeliveryOutcome] = []
    async with WebhookChannel(provider.url, SECRET) as channel:
        result = await deliver(
            channel, make_message(), policy, CircuitBreaker("webhook"), on_retry=seen.append
        )
    assert (result.outcome, result.attempts) == ("delivered", 2)
    assert [r.error for r in seen] == ["timed out after 0.1s"]
    assert result.latency_ms < 450
    assert provider.hits == 2


async def test_unreachable_endpoint_is_retryable_then_dead() -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    async with WebhookChannel(url, SECRET) as channel:
        result = await deliver(channel, make_message(), FAST, CircuitBreaker("webhook"))
    assert (result.outcome, result.attempts) == ("dead", 3)
    assert result.error is not None and "Connect" in result.error


# --- circuit breaker -----------------------------------------------------------------


async def test_circuit_opens_after_consecutive_failures_and_recovers_after_cooldown(
    provider: Provider,
) -> None:
    provider.answer((500, "boom"))
    once = RetryPolicy(max_attempts=1, attempt_timeout_s=1)
    breaker = CircuitBreaker("wecom", failure_threshold=3, cooldown_s=0.2)
    async with WeComChannel(provider.url) as channel:
        for _ in range(3):
            assert (await deliver(channel, make_message(), once, breaker)).outcome == "dead"
        assert breaker.state == "open"
        assert metric("kairos_circuit_open", channel="wecom") == 1

        fast = await deliver(channel, make_message(), once, breaker)
        assert (fast.outcome, fast.attempts) == ("dead", 0)
        assert fast.error is not None and fast.error.startswith("circuit open for wecom")
        assert provider.hits == 3  # the open circuit never reached the server

        await asyncio.sleep(0.25)
        assert breaker.state == "half_open"
        provider.answer((200, {"errcode": 0}))
        healed = await deliver(channel, make_message(), once, breaker)
    assert (healed.outcome, healed.attempts) == ("delivered", 1)
    assert breaker.state == "closed"
    assert metric("kairos_circuit_open", channel="wecom") == 0
    assert provider.hits == 4


async def test_failed_probe_reopens_the_circuit(provider: Provider) -> None:
    provider.answer((500, "still down"))
    breaker = CircuitBreaker("sms", failure_threshold=1, cooldown_s=0.05)
    async with SmsChannel(provider.url, "a", "b", "c") as channel:
        msg = make_message(to="+491")
        await deliver(channel, msg, FAST, breaker)
        assert provider.hits == 1  # opened after the first failure: no further attempts
        await asyncio.sleep(0.06)
        probe = await deliver(channel, msg, FAST, breaker)
    assert (probe.outcome, probe.attempts) == ("dead", 1)
    assert provider.hits == 2
    assert breaker.state == "open"


# --- pool: bounded concurrency per channel -------------------------------------------


async def test_pool_bounds_concurrent_sends_per_channel(provider: Provider) -> None:
    provider.delays = [0.05]
    fast_provider = Provider()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fast_provider.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]

    pool = ChannelPool(
        [WebhookChannel(provider.url, SECRET), SlackChannel(f"http://{host}:{port}/slack")],
        policy=FAST,
        concurrency=2,
    )
    try:
        slow = [asyncio.create_task(pool.deliver(make_message())) for _ in range(8)]
        await asyncio.sleep(0.01)
        other = await pool.deliver(make_message(channel="slack"))
        slow_still_queued = sum(not task.done() for task in slow)
        results = await asyncio.gather(*slow)
    finally:
        await pool.close()
        await runner.cleanup()

    assert {r.outcome for r in results} == {"delivered"}
    assert provider.hits == 8
    assert provider.max_in_flight == 2
    assert other.outcome == "delivered"
    assert slow_still_queued >= 4  # slack went through while webhook was saturated


async def test_pool_rejects_a_message_for_an_unconfigured_channel() -> None:
    pool = ChannelPool([ConsoleChannel()])
    result = await pool.deliver(make_message(channel="carrier_pigeon"))
    assert (result.outcome, result.attempts) == ("failed", 0)
    assert result.error == "no channel 'carrier_pigeon' configured (have: console)"


# --- settings ------------------------------------------------------------------------


async def test_channel_from_env_builds_a_working_webhook(provider: Provider) -> None:
    env = {"KAIROS_WEBHOOK_URL": provider.url, "KAIROS_WEBHOOK_SECRET": SECRET}
    channel = channel_from_env("webhook", env)
    try:
        await channel.send(make_message())
    finally:
        await channel.close()
    got = provider.received[0]
    ts, sig = got.headers["X-Kairos-Timestamp"], got.headers["X-Kairos-Signature"]
    assert verify_signature(SECRET, ts, got.body, sig, now=time.time())


def test_channel_from_env_names_the_missing_variable() -> None:
    with pytest.raises(SettingsError, match="KAIROS_SMS_TOKEN is required"):
        channel_from_env("sms", {"KAIROS_SMS_URL": "http://x", "KAIROS_SMS_SID": "a"})
    with pytest.raises(SettingsError, match="KAIROS_SMTP_STARTTLS must be true or false"):
        channel_from_env("email", {"KAIROS_SMTP_FROM": "a@b", "KAIROS_SMTP_STARTTLS": "maybe"})
    with pytest.raises(SettingsError, match="unknown channel 'fax'"):
        channel_from_env("fax", {})
