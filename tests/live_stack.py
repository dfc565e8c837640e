"""A whole Kairos on loopback for security tests: its own broker, a Redis with a password,
every channel's receiver (HTTP endpoints and an SMTP server that requires AUTH), and the
worker and dispatcher as real processes; plus ways to search every store afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from workers import ROOT, Worker

from kairos.launcher import LOOPBACK, free_port, resolve_redis_bin


@dataclass
class RedisProcess:
    """A redis-server (or valkey-server) child with its own arguments."""

    process: subprocess.Popen[bytes]
    port: int
    password: str | None
    log: Path

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis_process(*args: str, password: str | None = None) -> RedisProcess:
    """Start Redis on a free port with ``args`` (and ``--requirepass``); wait for a PING."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="kairos-redis-")) / "redis.log"
    argv = [resolve_redis_bin(), "--port", str(port), "--bind", LOOPBACK, "--save", ""]
    argv += ["--appendonly", "no", *args]
    if password:
        argv += ["--requirepass", password]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = RedisProcess(proc, port, password, log)
    client = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"redis did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


def dump_redis(url: str) -> list[bytes]:
    """Every key of every database and everything stored under it, as bytes."""
    client = redis.Redis.from_url(url)
    out: list[bytes] = []
    databases = int(client.config_get("databases").get("databases", 16))
    for db in range(databases):
        c = redis.Redis.from_url(url, db=db)
        for key in c.scan_iter(count=1000):
            out.append(key)
            kind = c.type(key).decode()
            if kind == "string":
                out.append(c.get(key) or b"")
            elif kind == "hash":
                for k, v in c.hgetall(key).items():
                    out += [k, v]
            elif kind == "set":
                out += list(c.smembers(key))
            elif kind == "zset":
                out += [m for m, _ in c.zrange(key, 0, -1, withscores=True)]
            elif kind == "list":
                out += c.lrange(key, 0, -1)
            else:  # streams and modules are not used by Kairos; show them if they appear
                out.append(f"<{kind}>".encode())
    return out


@dataclass
class Receivers:
    """The providers: one HTTP app for webhook/sms/push/slack/wecom, and an SMTP server.

    ``hits[path]`` keeps each request's headers and body; SMTP needs AUTH with
    ``smtp_user`` / ``smtp_password`` and records each accepted message.
    """

    smtp_user: str
    smtp_password: str
    hits: dict[str, list[tuple[dict[str, str], bytes]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    url: str = ""
    smtp_port: int = 0

    async def _http(self, request: web.Request) -> web.Response:
        self.hits[request.path].append((dict(request.headers), await request.read()))
        if request.path == "/wecom":
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        return web.Response(text="ok")

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login, auth_data.password))
            ok = (auth_data.login, auth_data.password) == (
                self.smtp_user.encode(),
                self.smtp_password.encode(),
            )
            return AuthResult(success=ok)
        return AuthResult(success=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.hits["smtp"].append(({}, envelope.content))
        return "250 OK"

    @contextlib.asynccontextmanager
    async def running(self):  # type: ignore[no-untyped-def]
        app = web.Application()
        app.router.add_post("/{channel}", self._http)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, LOOPBACK, port).start()
        self.url = f"http://{LOOPBACK}:{port}"
        smtp = Controller(
            self,
            hostname=LOOPBACK,
            port=free_port(),
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
        smtp.start()
        self.smtp_port = smtp.port
        try:
            yield self
        finally:
            smtp.stop()
            await runner.cleanup()


def basic_auth(user: str, password: str) -> str:
    """How HTTP basic auth and SMTP AUTH PLAIN carry a secret: base64, as a log would show it."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def start(command: str, env: dict[str, str]) -> Worker:
    """``kairos worker`` or ``kairos dispatcher`` with its metrics on a fresh port."""
    port = str(free_port())
    return Worker(
        {**env, "KAIROS_METRICS_PORT": port, "KAIROS_DISPATCHER_METRICS_PORT": port}, command
    )


def kairos(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a ``kairos`` command to completion; stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "kairos.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def log_text(process: Worker) -> str:
    return Path(process.log.name).read_text(errors="replace")


async def wait_until(check: Any, timeout: float, what: str, *processes: Worker) -> Any:
    """Poll ``await check()`` (or ``check()``) until truthy; fail with the processes' tails."""
    deadline = time.monotonic() + timeout
    while True:
        for p in processes:
            p.check_alive()
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.process.args}\n{p.tail()}" for p in processes)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")
        await asyncio.sleep(0.2)


def records(values: Iterator[bytes | None]) -> list[dict[str, Any]]:
    return [orjson.loads(v) for v in values if v]


@dataclass
class BrokerProcess:
    """A Tansu broker started with extra flags (``--authentication``); memory only."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"kafka://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: Tansu stops at once
            self.process.wait(5)


def start_tansu(*flags: str, advertised_port: int | None = None) -> BrokerProcess:
    """Tansu with ``flags``; ``advertised_port``: where clients are told to connect (a proxy)."""
    from kairos.launcher import resolve_broker_bin

    port = free_port()
    listener = f"tcp://{LOOPBACK}:{port}"
    advertised = f"tcp://{LOOPBACK}:{advertised_port or port}"
    log = Path(tempfile.mkdtemp(prefix="kairos-tansu-")) / "broker.log"
    argv = [resolve_broker_bin(), "broker", "--listener-url", listener]
    argv += ["--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/", *flags]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.5):
            return BrokerProcess(proc, port, log)
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"broker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def make_pki(directory: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl tool).

    Returns the paths by name: ``ca.pem``, ``server.pem``, ``server.key``, ``client.pem``,
    ``client.key``.
    """

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    d = directory
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=kairos test CA", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "basicConstraints=CA:FALSE"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr")  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem",
                "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "1",
                "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem")  # fmt: skip
    names = ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    return {n: str(d / n) for n in names}
