"""Run real ``kairos worker`` processes in integration tests and read what they produced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from kairos.launcher import free_port

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """A ``kairos worker`` child process with its own metrics port and log file."""

    def __init__(self, env: dict[str, str], command: str = "worker") -> None:
        self.metrics_port = int(env.get("KAIROS_METRICS_PORT") or free_port())
        env = {**os.environ, **env, "KAIROS_METRICS_PORT": str(self.metrics_port)}
        self.log = tempfile.NamedTemporaryFile(
            prefix=f"kairos-{command}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kairos.cli", command],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def metric(self, name: str, exclude: str = "") -> float:
        """Sum of a metric's samples on this worker's /metrics (0 if unreachable)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
            ) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name)
            and (line[len(name)] in "{ ")
            and not (exclude and exclude in line)
        )

    def wait_metric(self, name: str, at_least: float, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            value = self.metric(name)
            if value >= at_least:
                return value
            time.sleep(0.1)
        raise AssertionError(f"{name} stayed below {at_least} for {timeout}s\n{self.tail()}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/ready`` answers 200: partitions assigned, state restored."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/ready", timeout=2
                ) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"/ready never answered 200 in {timeout}s\n{self.tail()}")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_env(broker_url: str, redis_url: str, config: Path, app_id: str) -> dict[str, str]:
    return {
        "BROKER_URL": broker_url,
        "REDIS_URL": redis_url,
        "KAIROS_CONFIG": str(config),
        "KAIROS_APP_ID": app_id,
        "KAIROS_PARTITIONS": "4",
        "KAIROS_SESSION_TIMEOUT": "6",
        "KAIROS_LOG_LEVEL": "info",
    }


async def collect(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    count: int,
    timeout: float,
) -> list[dict[str, Any]]:
    """Decoded records of ``topic`` (from the start) that ``match``; waits for ``count`` or timeout."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < count:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for m in messages:
                    record = orjson.loads(m.value)
                    if match(record):
                        found.append(record)
    finally:
        await consumer.stop()
    return found
