"""The real processes of a fault scenario: Tansu, Redis, ``kairos worker``, ``kairos dispatcher``.

Each runs as a child process with its log under ``var/faults/logs/<scenario>/`` and can be
killed (any signal) and started again with the same settings, ports included. No orphan
survives the harness: children are started with ``PR_SET_PDEATHSIG`` (the kernel kills
them when the harness dies, even by ``kill -9``), every child is stopped at interpreter
exit, and the harness stops them all when a scenario ends.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import aiohttp

# The launcher's readiness probes (a Kafka ApiVersions request, a Redis PING): reused
# rather than copied, since a broker or Redis we start must be "ready" by the same test.
from kairos.launcher import (
    LOOPBACK,
    _kafka_ready,
    _redis_ready,
    free_port,
    resolve_broker_bin,
    resolve_redis_bin,
)

ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the parent thread exits.

    The parent *thread*: children must be started from the event loop's (main) thread,
    never from ``asyncio.to_thread``, or they die when that worker thread ends.
    """
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One restartable child process; its output goes to ``log_path`` (appended on restart)."""

    _alive: set[Child] = set()

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.cwd = cwd
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.stop_signal = stop_signal
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exits: list[int] = []  # return codes of every ended run, in order
        self.crashes: list[int] = []  # ...of the runs that ended without kill()/stop()
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        self._log.write(f"--- start #{self.starts + 1} at {time.time():.3f}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.starts += 1
        Child._alive.add(self)

    async def kill(self, sig: int = signal.SIGKILL, timeout: float = 20.0) -> None:
        """Send ``sig`` and wait for the exit; SIGKILL if it has not exited by ``timeout``.

        Waits by polling, so the event loop (receiver, publisher) runs on meanwhile: a
        worker's clean stop takes seconds.
        """
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self.kill_now()

    async def stop(self, timeout: float = 20.0) -> None:
        """A clean stop: the process's own stop signal, then SIGKILL after ``timeout``."""
        await self.kill(self.stop_signal, timeout)

    def kill_now(self) -> None:
        """SIGKILL and reap, synchronously (for interpreter exit)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._ended()

    def poll(self) -> int | None:
        """The return code if the process ended on its own (recorded once), else None."""
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            self.crashes.append(code)
            self._ended()
            return code
        return None

    def _ended(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            self.exits.append(self.process.returncode)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        Child._alive.discard(self)

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @classmethod
    def stop_all(cls) -> None:
        for child in list(cls._alive):
            child.kill_now()


atexit.register(Child.stop_all)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, child: Child | None = None
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` s (or when ``child`` exits)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if child is not None and (code := child.poll()) is not None:
            raise RuntimeError(f"{child.name} exited ({code}) before {what}\n{child.tail()}")
        if time.monotonic() > deadline:
            tail = f"\n{child.tail()}" if child is not None else ""
            raise TimeoutError(f"{what} not within {timeout:g}s{tail}")
        await asyncio.sleep(0.2)


# --- the broker ---------------------------------------------------------------------


class Broker(Child):
    """Tansu listening on ``port`` and advertising ``advertised_port`` (the proxy's)."""

    def __init__(self, log_dir: Path, advertised_port: int) -> None:
        self.port = free_port()
        self.advertised_port = advertised_port
        argv = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://{LOOPBACK}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{LOOPBACK}:{advertised_port}",
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]
        # SIGINT: Tansu exits within milliseconds (SIGTERM takes ~0.5 s).
        super().__init__("broker", argv, log_dir / "broker.log", stop_signal=signal.SIGINT)

    async def ready(self, timeout: float = 15.0) -> None:
        async def answers() -> bool:
            return await asyncio.to_thread(_kafka_ready, LOOPBACK, self.port)

        await wait_until(answers, timeout=timeout, what="the broker answering", child=self)


# --- redis --------------------------------------------------------------------------


class Redis(Child):
    """A Redis (or Valkey) server whose data survives a stop and a start on the same port.

    Append-only file with ``appendfsync everysec`` (what ``agents/dispatcher.py`` asks of
    production) in the scenario's own directory; no RDB snapshots. ``stop()`` sends
    SIGTERM: Redis then writes and fsyncs the AOF before exiting, so a stopped Redis
    restarts with every acknowledged write (a ``kill -9`` could lose up to a second of
    them, which is what everysec trades for speed).
    """

    def __init__(self, log_dir: Path, data_dir: Path) -> None:
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            resolve_redis_bin(),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
        super().__init__("redis", argv, log_dir / "redis.log", stop_signal=signal.SIGTERM)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    async def ready(self, timeout: float = 15.0) -> None:
        async def answers() -> bool:
            return await asyncio.to_thread(_redis_ready, LOOPBACK, self.port)

        await wait_until(answers, timeout=timeout, what="redis answering PING", child=self)


# --- kairos -------------------------------------------------------------------------


class KairosProcess(Child):
    """``kairos worker`` or ``kairos dispatcher`` with its own metrics port (kept on restart).

    ``code_dir``: the source tree it runs (its working directory comes first on
    ``sys.path``), by default this checkout; the soak runner can point it at an exported
    revision to measure that revision.
    """

    def __init__(
        self, command: str, name: str, log_dir: Path, env: dict[str, str], code_dir: Path = ROOT
    ) -> None:
        self.metrics_port = free_port()
        port_variable = (
            "KAIROS_METRICS_PORT" if command == "worker" else "KAIROS_DISPATCHER_METRICS_PORT"
        )
        full_env = {**os.environ, **env, port_variable: str(self.metrics_port)}
        argv = [sys.executable, "-m", "kairos.cli", command]
        super().__init__(name, argv, log_dir / f"{name}.log", env=full_env, cwd=code_dir)

    async def is_ready(self) -> bool:
        """``/ready`` answers 200 (worker: partitions recovered and Redis reachable)."""
        url = f"http://{LOOPBACK}:{self.metrics_port}/ready"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(url) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def ready(self, timeout: float = 90.0) -> None:
        await wait_until(self.is_ready, timeout=timeout, what=f"{self.name} /ready", child=self)
