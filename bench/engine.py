"""A ``kairos worker`` child process for the bench, read through its /metrics and /ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from kairos.launcher import free_port

ROOT = Path(__file__).resolve().parents[1]


class EngineWorker:
    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()  # a restarted worker keeps its port (its identity)
        # the log file lives as long as the child process
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="bench-worker-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kairos.cli", "worker"],
            env={**os.environ, **env, "KAIROS_METRICS_PORT": str(self.port)},
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (0 while the endpoint is not up)."""
        _, text = self._get("/metrics")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name)] in "{ "
        )

    def ready(self) -> bool:
        return self._get("/ready")[0] == 200

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def consumed(workers: list[EngineWorker]) -> float:
    return sum(w.metric("kairos_events_consumed_total") for w in workers)


def drain_rate(workers: list[EngineWorker], records: int, timeout: float) -> dict:
    """Poll consumed-events until ``records``; the rate between the first sample above 2%
    and the last below 100% (start-up, group join and the tail are excluded)."""
    deadline = time.monotonic() + timeout
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    while time.monotonic() < deadline:
        for w in workers:
            w.alive()
        n, t = consumed(workers), time.monotonic()
        if n >= records:
            break
        if n > records * 0.02:
            first = first or (t, n)
            last = (t, n)
        time.sleep(0.25)
    if first is None or last is None or last[0] <= first[0]:
        raise RuntimeError(f"engine consumed too little: {consumed(workers)} of {records}")
    return {
        "eps": round((last[1] - first[1]) / (last[0] - first[0])),
        "records": int(last[1] - first[1]),
        "seconds": round(last[0] - first[0], 2),
        "done": consumed(workers) >= records,
    }
