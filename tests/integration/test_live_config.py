"""Live config: CLI switches and file edits reach running workers; bad edits change nothing.

The watcher tests run ``ConfigWatcher`` in-process against a real Redis. The end-to-end
test runs two ``kairos worker`` processes on their own broker and drives them with the
``kairos triggers`` CLI and edits of their config file, asserting on ``actions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from kafka_helpers import consume_all, produce

from core.config import Config
from core.triggers import TRIGGER_TYPES
from kairos.cli import main as kairos
from kairos.launcher import Broker, resolve_broker_bin, start_broker
from monitoring import metrics
from state import override_store, overrides
from state.config_watcher import ConfigWatcher
from stream import topics

pytestmark = pytest.mark.integration

KAIROS = str(Path(sys.executable).with_name("kairos"))
OTHERS = "".join(  # only the trigger under test may decide, whatever else gets added
    f"  {name}:\n    enabled: false\n" for name in TRIGGER_TYPES if name != "abandoned_cart"
)
CONFIG = (
    "engine:\n  timer_grace: 0s\n"
    "policy:\n  quiet_hours:\n    enabled: false\n"
    "triggers:\n  abandoned_cart:\n    delay: {delay}\n" + OTHERS.replace("{", "{{")
)
BAD_CONFIG = CONFIG.format(delay="1s\n    channel: pigeon")
BAD_LINE = BAD_CONFIG.splitlines().index("    channel: pigeon") + 1


def db_url(redis_url: str, db: int) -> str:
    """The same server, another database: each test starts from an empty one."""
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


def write(path: Path, text: str) -> None:
    """Replace the file at once, as editors and deploys do (no half-written reads)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def failures() -> float:
    return metrics.CONFIG_RELOADS.labels("failure")._value.get()


# --- the watcher, in-process ----------------------------------------------------------------


class Applied:
    def __init__(self) -> None:
        self.configs: list[Config] = []

    def __call__(self, cfg: Config) -> None:
        self.configs.append(cfg)

    async def wait(self, count: int, timeout: float = 2.0) -> float:
        started = time.monotonic()
        while len(self.configs) < count:
            assert time.monotonic() - started < timeout, f"only {len(self.configs)} applied"
            await asyncio.sleep(0.02)
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def watching(path: Path, url: str, poll: float = 0.5):
    applied = Applied()
    client = aioredis.from_url(url)
    watcher = ConfigWatcher(str(path), url, client, applied, poll_seconds=poll)
    watcher.load_initial(Config())
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher, applied
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_cli_switch_reaches_a_watcher_through_pubsub(tmp_path: Path, redis_url: str) -> None:
    url = db_url(redis_url, 3)
    path = tmp_path / "triggers.yaml"
    write(path, CONFIG.format(delay="2s"))
    async with watching(path, url, poll=30) as (watcher, applied):  # no polling: pub/sub only
        await asyncio.sleep(0.2)  # subscribed
        generation = metrics.CONFIG_GENERATION._value.get()
        assert kairos(["triggers", "disable", "abandoned_cart", "--redis", url]) == 0
        took = await applied.wait(2)
    assert took < 1.0
    assert applied.configs[-1].triggers["abandoned_cart"].enabled is False
    assert watcher.active.triggers["abandoned_cart"].delay == 2000  # the file still applies
    assert metrics.CONFIG_GENERATION._value.get() == generation + 1


async def test_bad_file_is_rejected_and_the_old_config_stays(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = db_url(redis_url, 4)
    path = tmp_path / "triggers.yaml"
    write(path, CONFIG.format(delay="2s"))
    async with watching(path, url, poll=0.05) as (watcher, applied):
        before = failures()
        with caplog.at_level(logging.ERROR, "state.config_watcher"):
            write(path, BAD_CONFIG)
            await asyncio.sleep(0.5)
        assert failures() == before + 1  # once per bad content, not once per poll
        assert watcher.active.triggers["abandoned_cart"].delay == 2000
        assert applied.configs[-1].triggers["abandoned_cart"].channel == "push"
        assert (
            f"{path}:{BAD_LINE}: triggers.abandoned_cart.channel: expected a channel" in caplog.text
        )

        # the CLI still works while the file is broken: over the last valid file
        assert kairos(["triggers", "set", "abandoned_cart", "shadow", "true", "--redis", url]) == 0
        await applied.wait(2)
        assert watcher.active.triggers["abandoned_cart"].shadow is True
        assert watcher.active.triggers["abandoned_cart"].delay == 2000

        write(path, CONFIG.format(delay="4s"))  # fixed: applies, overrides kept
        await applied.wait(3)
    assert watcher.active.triggers["abandoned_cart"].delay == 4000
    assert watcher.active.triggers["abandoned_cart"].shadow is True


async def test_bad_override_is_skipped_and_the_others_apply(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = db_url(redis_url, 5)
    path = tmp_path / "triggers.yaml"
    write(path, CONFIG.format(delay="2s"))
    raw = redis.Redis.from_url(url)
    raw.hset(overrides.OVERRIDES, mapping={"triggers.abandoned_cart.delay": "soon"})
    raw.hset(overrides.OVERRIDES, mapping={"triggers.welcome.enabled": "false"})
    before = failures()
    with caplog.at_level(logging.ERROR, "state.config_watcher"):
        async with watching(path, url) as (watcher, _):
            pass
    assert failures() == before + 1
    assert "live override: triggers.abandoned_cart.delay: expected a duration" in caplog.text
    assert watcher.active.triggers["abandoned_cart"].delay == 2000
    assert watcher.active.triggers["welcome"].enabled is False


async def test_file_edit_is_recorded_once_however_many_workers_see_it(
    tmp_path: Path, redis_url: str
) -> None:
    url = db_url(redis_url, 6)
    path = tmp_path / "triggers.yaml"
    write(path, CONFIG.format(delay="2s"))
    async with watching(path, url, 0.05) as (_, one), watching(path, url, 0.05) as (_, two):
        write(path, CONFIG.format(delay="4s"))
        await one.wait(2)
        await two.wait(2)
    history = override_store.read_history(redis.Redis.from_url(url), 10)
    assert [(h["key"], h["old"], h["new"], h["source"]) for h in history] == [
        ("triggers.abandoned_cart.delay", "2s", "4s", "file")
    ]


# --- two workers, end to end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def own_broker() -> Iterator[Broker]:
    """A broker for this module alone: the workers' topic names are fixed."""
    with start_broker(resolve_broker_bin()) as running:
        yield running


def customers_on_every_partition(tag: str, partitions: int = 4) -> list[str]:
    """One customer id per partition, so every worker owns some of them."""
    partitioner, found, n = DefaultPartitioner(), {}, 0
    while len(found) < partitions:
        cid = f"{tag}-{uuid.uuid4().hex[:6]}-{n}"
        found.setdefault(partitioner(cid.encode(), list(range(partitions)), None), cid)
        n += 1
    return list(found.values())


async def add_to_cart(bootstrap: str, customers: list[str]) -> int:
    now = int(time.time() * 1000)
    records = [
        (
            cid.encode(),
            orjson.dumps(
                {
                    "event_id": uuid.uuid4().hex,
                    "type": "add_to_cart",
                    "customer_id": cid,
                    "ts": now,
                    "product_id": "sku-1",
                    "quantity": 1,
                    "price": 20.0,
                    "currency": "EUR",
                }
            ),
        )
        for cid in customers
    ]
    await produce(bootstrap, topics.CLICKSTREAM, records)
    return now


async def decisions(bootstrap: str, customers: list[str], want: int, timeout: float) -> list:
    """The abandoned_cart decisions for ``customers`` once ``want`` arrived (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        records = await consume_all(bootstrap, topics.ACTIONS, min_count=10**9, timeout=1.0)
        found = [orjson.loads(r.value) for r in records]
        found = [
            d for d in found if d["customer_id"] in customers and d["trigger"] == "abandoned_cart"
        ]
        if len(found) >= want or time.monotonic() > deadline:
            return found


async def group_members(bootstrap: str, group: str) -> int:
    """How many consumers the broker counts in ``group``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.to_object()["groups"]
    return len(described["members"])


def cli(*args: str, url: str, path: Path) -> None:
    done = subprocess.run(
        [KAIROS, "triggers", *args, "--redis", url, "--config", str(path), "--by", "test"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


async def test_two_workers_follow_cli_switches_and_file_edits(
    tmp_path: Path, own_broker: Broker, redis_url: str
) -> None:
    url = db_url(redis_url, 7)
    bootstrap = own_broker.bootstrap
    path = tmp_path / "triggers.yaml"
    write(path, CONFIG.format(delay="2s"))
    env = {
        **os.environ,
        "BROKER_URL": own_broker.url,
        "REDIS_URL": url,
        "KAIROS_PARTITIONS": "4",
        "KAIROS_SESSION_TIMEOUT": "6",
        "KAIROS_METRICS_PORT": "0",
        "KAIROS_CONFIG": str(path),
        "KAIROS_APP_ID": f"live-{uuid.uuid4().hex[:6]}",
        "PYTHONUNBUFFERED": "1",
    }
    logs = [tmp_path / f"worker-{i}.log" for i in (1, 2)]
    workers = []
    for log_path in logs:
        with open(log_path, "wb") as out:
            workers.append(subprocess.Popen([KAIROS, "worker"], env=env, stdout=out, stderr=out))
    try:
        # warm-up: both workers up, every partition fires after the 2s delay
        warm = customers_on_every_partition("warm")
        sent_at = await add_to_cart(bootstrap, warm)
        got = await decisions(bootstrap, warm, 4, timeout=40)
        assert len(got) == 4, [p.read_text()[-2000:] for p in logs]
        assert all(d["status"] == "send" and "within 2s" in d["reason"] for d in got)
        assert all(w.poll() is None for w in workers)
        assert await group_members(bootstrap, env["KAIROS_APP_ID"]) == 2

        # 1. disabled from the CLI: 2 s later, nothing of it fires, pending or new
        pending = customers_on_every_partition("pending")
        await add_to_cart(bootstrap, pending)
        cli("disable", "abandoned_cart", url=url, path=path)
        await asyncio.sleep(2)
        for log_path in logs:
            assert "triggers.abandoned_cart.enabled: true -> false" in log_path.read_text()
        after_off = customers_on_every_partition("off")
        await add_to_cart(bootstrap, after_off)
        assert await decisions(bootstrap, pending + after_off, 1, timeout=4) == []

        # 2. on again and a new delay in the file: the new delay, and nothing from history
        cli("enable", "abandoned_cart", url=url, path=path)
        write(path, CONFIG.format(delay="4s"))
        await asyncio.sleep(2)
        fresh = customers_on_every_partition("fresh")
        sent_at = await add_to_cart(bootstrap, fresh)
        got = await decisions(bootstrap, fresh, 4, timeout=10)
        assert len(got) == 4
        assert all("within 4s" in d["reason"] for d in got)
        assert all(d["decided_at"] - sent_at >= 4000 for d in got)
        assert await decisions(bootstrap, pending + after_off, 1, timeout=0) == []

        # 3. a bad file is rejected (old config stays) while the CLI still works: shadow
        write(path, BAD_CONFIG)
        cli("set", "abandoned_cart", "shadow", "true", url=url, path=path)
        await asyncio.sleep(2)
        for log_path in logs:
            text = log_path.read_text()
            assert "config rejected" in text
            assert f"{path}:{BAD_LINE}: triggers.abandoned_cart.channel" in text
        shadowed = customers_on_every_partition("shadow")
        sent_at = await add_to_cart(bootstrap, shadowed)
        got = await decisions(bootstrap, shadowed, 4, timeout=10)
        assert len(got) == 4
        assert all(d["status"] == "shadow" and d["channel"] == "push" for d in got)
        assert all("within 4s" in d["reason"] for d in got)
        assert all(w.poll() is None for w in workers), "no restart"
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()

    history = [
        json.loads(line)
        for line in subprocess.run(
            [KAIROS, "triggers", "history", "--json", "--redis", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    ]
    changes = [(h["key"], h["old"], h["new"], h["by"]) for h in history]
    assert changes == [
        ("triggers.abandoned_cart.shadow", "false", "true", "test"),
        ("triggers.abandoned_cart.delay", "2s", "4s", f"file {path}"),
        ("triggers.abandoned_cart.enabled", "false", "true", "test"),
        ("triggers.abandoned_cart.enabled", "true", "false", "test"),
    ]
