"""Start a real Prometheus server in a test and ask it questions over its HTTP API.

The server scrapes the given targets every second, evaluates the given rule files
every second, keeps its TSDB in a temporary directory and listens on a free loopback
port. ``prometheus_binary()`` is ``None`` when the ``prometheus`` binary is not on
PATH (Debian: ``apt-get install prometheus``); callers skip with that reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kairos.launcher import free_port

MISSING = "the `prometheus` binary is not on PATH (Debian/CI: apt-get install prometheus)"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class PrometheusError(AssertionError):
    """The server did not start, or the API answered with an error."""


class PrometheusServer:
    """A ``prometheus`` child process; ``stop()`` ends it.

    ``targets`` maps a job name to ``host:port`` targets scraped on ``/metrics``;
    ``rule_files`` are copied next to the generated config so their paths are fixed.
    """

    def __init__(
        self,
        workdir: Path,
        targets: Mapping[str, Sequence[str]],
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
    ) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise PrometheusError(MISSING)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        rules = []
        for i, source in enumerate(rule_files):
            copy = workdir / f"rules-{i}-{source.name}"
            shutil.copyfile(source, copy)
            rules.append(str(copy))
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": rules,
            "scrape_configs": [
                {
                    "job_name": job,
                    "scrape_interval": interval,
                    "scrape_timeout": interval,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": list(hosts)}],
                }
                for job, hosts in targets.items()
            ],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    # --- lifecycle ----------------------------------------------------------------
    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait for ``/-/ready`` (TSDB open, config and rules loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise PrometheusError(f"prometheus not ready after {timeout}s\n{self.tail()}")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise PrometheusError(
                f"prometheus exited with {self.process.returncode}\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    # --- HTTP API -----------------------------------------------------------------
    def api(self, path: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """``GET /api/v1/<path>``; returns the whole JSON answer, raises on transport errors."""
        query = urllib.parse.urlencode(list(params))
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query; the body says why
            body = exc.read()
            try:
                return json.loads(body)
            except ValueError:
                raise PrometheusError(f"{path} {params}: HTTP {exc.code}: {body!r}") from exc

    def query(self, expr: str) -> dict[str, Any]:
        """The raw answer of an instant query: ``{"status": ..., "data"|"error": ...}``."""
        return self.api("query", [("query", expr)])

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's result as ``(labels, value)`` pairs; raises if it fails."""
        answer = self.query(expr)
        if answer.get("status") != "success":
            raise PrometheusError(f"{expr!r}: {answer.get('errorType')}: {answer.get('error')}")
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` (e.g. a ``sum(...)``); ``None`` for an empty result."""
        result = self.vector(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{expr!r} returned {len(result)} series: {result}")
        return result[0][1]

    def series(self, match: str) -> list[dict[str, str]]:
        """``/api/v1/series`` for one selector: the label sets of every matching series."""
        answer = self.api("series", [("match[]", match)])
        if answer.get("status") != "success":
            raise PrometheusError(f"series {match!r}: {answer.get('error')}")
        return answer["data"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets", [("state", "active")])["data"]["activeTargets"]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, flattened over groups."""
        groups = self.api("rules", [])["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def wait_for(
        self,
        expr: str,
        ok: Callable[[float | None], bool],
        timeout: float = 30.0,
        what: str = "",
    ) -> float | None:
        """Poll ``value(expr)`` until ``ok(value)``; raises with the last value on timeout."""
        deadline = time.monotonic() + timeout
        last: float | None = None
        while True:
            self.check_alive()
            last = self.value(expr)
            if ok(last):
                return last
            if time.monotonic() > deadline:
                raise PrometheusError(
                    f"{what or expr!r}: still {last!r} after {timeout}s\n{self.tail()}"
                )
            time.sleep(0.25)
