"""``kairos dev``: its own ports and numbers, every URL and export, and it stops when a child dies.

Each test runs the real ``kairos dev`` (broker, Redis, worker, dispatcher, simulator) as
a child process with its output piped, as a person's terminal would not be.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from kairos.launcher import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAKE_COUNT = 987654  # what another process on the worker's usual port claims


class Dev:
    """A running ``kairos dev`` and everything it printed so far."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kairos.cli", "dev", "--quiet", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not printed:\n{self.text[-3000:]}")

    def finish(self, timeout: float = 90) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                self.process.wait(30)

    def children(self) -> dict[str, int]:
        """Its worker and dispatcher: name -> pid (our own children only)."""
        found = {}
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        for pid in path.read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"kairos.cli" in cmdline:
                found[cmdline[cmdline.index(b"kairos.cli") + 1].decode()] = int(pid)
        return found


@pytest.fixture
def port_9100_taken() -> Iterator[None]:
    """Another process answers on 9100 with metrics of its own (if 9100 is ours to take)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'kairos_events_consumed_total{{topic="clickstream",type="x"}} {FAKE_COUNT}\n'
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    try:
        server = HTTPServer(("127.0.0.1", 9100), Handler)
    except OSError:  # something else has it already: the same situation for dev
        yield
        return
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield
    server.shutdown()
    server.server_close()


def test_dev_runs_on_free_ports_prints_what_a_person_needs_and_counts_its_own(
    port_9100_taken: None, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.json"
    dev = Dev("--duration", "20", "--summary-json", str(summary))
    code = dev.finish()
    text = dev.text
    assert code == 0, text[-3000:]
    assert "\x1b[" not in text and "\x08" not in text, "no terminal codes in plain output"
    assert "Traceback" not in text
    worker = re.search(r"worker +http://127\.0\.0\.1:(\d+)/metrics +\S+/health +\S+/ready", text)
    dispatcher = re.search(r"dispatcher +http://127\.0\.0\.1:(\d+)/metrics +\S+/health", text)
    assert worker and dispatcher, text[:2000]
    assert worker.group(1) != "9100" and worker.group(1) != dispatcher.group(1)
    export = re.search(
        r"export BROKER_URL=kafka://127\.0\.0\.1:\d+ REDIS_URL=redis://\S+ "
        r"KAIROS_CONFIG=config/triggers\.yaml",
        text,
    )
    assert export, text[:2000]
    assert "config      config/triggers.yaml (from the default" in text
    assert "stop: Ctrl-C" in text
    processed = int(re.search(r"events processed +(\d+)", text).group(1))  # type: ignore[union-attr]
    published = int(re.search(r"events published +(\d+)", text).group(1))  # type: ignore[union-attr]
    assert 0 < processed <= published + 100 and processed != FAKE_COUNT
    assert summary.exists()


def test_a_taken_metrics_port_stops_dev_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        dev = Dev("--metrics-port", str(port), "--duration", "30")
        code = dev.finish(timeout=20)
    assert code == 2
    assert time.monotonic() - started < 15
    assert f"--metrics-port {port} is taken" in dev.text
    assert "broker" not in dev.text, "nothing was started"


def test_dev_stops_with_a_non_zero_exit_when_a_child_dies() -> None:
    dev = Dev("--duration", "120", "--metrics-port", str(free_port()))
    dev.wait_for(r"stop: Ctrl-C")
    deadline = time.monotonic() + 30
    while "worker" not in (children := dev.children()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # running, not starting
    signal_sent = time.monotonic()
    os.kill(children["worker"], signal.SIGKILL)
    code = dev.finish(timeout=60)
    assert code == 1, dev.text[-2000:]
    assert time.monotonic() - signal_sent < 30, "dev noticed at once, not at --duration"
    last = dev.text.strip().splitlines()[-1]
    assert last.startswith("kairos dev: the worker was killed by signal 9"), last
    assert "stopped everything" in last
