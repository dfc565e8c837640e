"""The console's browser tests' helpers: users, the campaign file, a signed-in page, traffic.

The fixtures that start everything are in ``conftest.py`` beside this file.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaProducer
from workers import ROOT, Worker

from state.overrides import CHANNEL, HISTORY, OVERRIDES
from stream import topics

CHROMIUM = "/usr/bin/chromium"
ADMIN = ("alice", "alice-secret-1")
VIEWER = ("bob", "bob-secret-22")
# Short delays and no quiet hours, so everything fires within a test; holdouts measure uplift.
CONFIG = """\
engine:
  timer_grace: 0s
policy:
  quiet_hours:
    enabled: false
triggers:
  abandoned_cart:
    delay: 3s
    holdout: 0.2
  welcome:
    holdout: 0.3
  nps_detractor:
    holdout: 0.2
"""


def skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is absent: `apt-get install -y chromium` (.ci/run installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[dev]'"
    return None


@dataclass
class Stack:
    """The running engine and console, and what the tests need to reach them."""

    bootstrap: str
    redis_url: str
    config: Path
    events: Path
    console_url: str
    console: subprocess.Popen[bytes]
    console_log: Path
    worker: Worker
    published: dict[str, int] = field(default_factory=dict)  # event_id -> ts

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def clear_overrides(self) -> None:
        """Every test starts from the file alone, with no history."""
        client = self.redis()
        client.delete(OVERRIDES, HISTORY)
        client.publish(CHANNEL, "[]")

    def console_tail(self) -> str:
        return self.console_log.read_text(errors="replace")[-3000:]


def console_process(env: dict[str, str], args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kairos.cli", "console", *args],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_ready(worker: Worker, timeout: float) -> None:
    """Until the worker's /ready says its partitions are recovered and Redis answers."""
    url = f"http://127.0.0.1:{worker.metrics_port}/ready"
    deadline = time.monotonic() + timeout
    while True:
        worker.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"worker not ready in {timeout}s\n{worker.tail()}"
        await asyncio.sleep(0.2)


async def open_console(browser: Any, stack: Stack, who: tuple[str, str]) -> Any:
    """A page signed in as ``who`` (HTTP basic auth), the console loaded."""
    context = await browser.new_context(
        http_credentials={"username": who[0], "password": who[1]},
        viewport={"width": 1360, "height": 1000},
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def logged(msg: Any) -> None:
        # A refused request (4xx) is logged by the browser too; the tests check those.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console {msg.type}: {msg.text}")

    page.on("console", logged)
    await page.goto(stack.console_url)
    try:
        await page.wait_for_selector("body[data-ready='1']", state="attached", timeout=15_000)
    except Exception as exc:
        raise AssertionError(f"the page did not load: {problems}\n{stack.console_tail()}") from exc
    page.problems = problems  # checked by the tests: a script error fails them
    return page


# --- traffic ----------------------------------------------------------------------------------


def event(customer_id: str, type_: str, ts: int | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "type": type_,
        "customer_id": customer_id,
        "ts": int(time.time() * 1000) if ts is None else ts,
        **fields,
    }


class Publisher:
    """Produces contract events keyed by customer, remembering each event's time."""

    TOPIC_OF = {
        **dict.fromkeys(["product_view", "add_to_cart", "page_view"], topics.CLICKSTREAM),
        **dict.fromkeys(["order_placed", "order_paid"], topics.ORDERS),
        **dict.fromkeys(["nps", "session_start", "email_open"], topics.ENGAGEMENT),
    }

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=5)

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, *events: dict[str, Any]) -> None:
        futures = []
        for ev in events:
            self.stack.published[ev["event_id"]] = ev["ts"]
            topic = self.TOPIC_OF[ev["type"]]
            futures.append(
                await self.producer.send(
                    topic, orjson.dumps(ev), key=ev["customer_id"].encode(), timestamp_ms=ev["ts"]
                )
            )
        await asyncio.gather(*futures)

    async def profile(self, customer_id: str, **fields: Any) -> None:
        """A ``profiles`` record (contact data and consent), a moment before their events."""
        ts = int(time.time() * 1000) - 1000
        value = orjson.dumps({"updated_at": ts, **fields})
        await self.producer.send_and_wait(
            topics.PROFILES, value, key=customer_id.encode(), timestamp_ms=ts
        )


async def shop_traffic(stack: Stack, customers: int, seed: int) -> None:
    """Carts, NPS answers and orders: every trigger under test fires, some customers convert."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:4]
    async with Publisher(stack) as pub:
        buyers = []
        for n in range(customers):
            cid = f"shop-{tag}-{n}"
            price = round(rng.uniform(15, 120), 2)
            if rng.random() < 0.2:  # no push messages for them: abandoned_cart is suppressed
                await pub.profile(cid, consent={"push": False})
            await pub.send(
                event(cid, "product_view", product_id=f"sku-{n % 40}", price=price),
                event(cid, "add_to_cart", product_id=f"sku-{n % 40}", quantity=1, price=price),
                event(cid, "nps", score=rng.randint(0, 10)),
            )
            if rng.random() < 0.45:
                buyers.append((cid, price))
            await asyncio.sleep(0.01)
        await asyncio.sleep(3.5)  # the carts' deadlines pass; the orders convert them
        for cid, price in buyers:
            order = f"o-{cid}"
            await pub.send(
                event(
                    cid,
                    "order_placed",
                    order_id=order,
                    total=price,
                    currency="EUR",
                    items=[{"product_id": "sku-1", "quantity": 1, "price": price}],
                )
            )


def nps_file(path: Path, scores: range) -> None:
    """A recorded event file: one customer per NPS score, an hour apart from a fixed time."""
    start = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    lines = [
        orjson.dumps(event(f"rec-{score}", "nps", ts=start + i * 3_600_000, score=score))
        for i, score in enumerate(scores)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
