"""``kairos console`` without a browser: its API on a real Redis, and every start-up mistake.

The app is served on a loopback port and reached over HTTP; changes land in Redis as
``kairos triggers`` would make them. (The page itself, driven in Chromium against a
running engine: ``tests/browser/``.)
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import web
from live_stack import start_redis_process
from workers import ROOT

from kairos.console.app import create_app
from kairos.console.auth import User, users_from_env
from kairos.console.control import Control
from kairos.errors import UserError
from kairos.launcher import free_port
from state.override_store import read_history, read_overrides

pytestmark = pytest.mark.integration

USERS = [User("alice", "admin", "alice-secret-1"), User("bob", "viewer", "bob-secret-22")]
CONFIG = "triggers:\n  abandoned_cart:\n    delay: 10m\n"


def basic(user: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = basic("alice", "alice-secret-1")
BOB = basic("bob", "bob-secret-22")


@contextlib.asynccontextmanager
async def serving(control: Control, events: Path) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(control, USERS, events, None))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "triggers.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def db(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(url).flushdb()
    return url


async def call(
    base: str, method: str, path: str, headers: dict[str, str], body: Any = None, raw: str = ""
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"headers": headers}
        if raw:
            kwargs["data"] = raw
            kwargs["headers"] = {**headers, "Content-Type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        async with session.request(method, base + path, **kwargs) as answer:
            return answer.status, await answer.json(content_type=None)


async def test_changes_are_overrides_with_the_users_name_and_the_clis_words(
    config: Path, db: str, tmp_path: Path
) -> None:
    control = Control(str(config), "--config", db)
    async with serving(control, tmp_path) as base:
        status, body = await call(
            base, "POST", "/api/triggers/welcome/state", ALICE, {"state": "shadow"}
        )
        assert status == 200
        assert body["changes"] == [
            {"key": "triggers.welcome.shadow", "old": "false", "new": "true"}
        ]
        status, body = await call(
            base, "POST", "/api/triggers/welcome/state", ALICE, {"state": "off"}
        )
        assert body["changes"] == [
            {"key": "triggers.welcome.enabled", "old": "true", "new": "false"}
        ]
        status, body = await call(
            base, "POST", "/api/triggers/abandoned_cart/set", ALICE, {"key": "delai", "value": "1h"}
        )
        assert (status, body) == (
            400,
            {
                "error": "live override: triggers.abandoned_cart.delai: unknown setting; "
                "did you mean 'delay'?; nothing changed",
                "field": "triggers.abandoned_cart.delai",
            },
        )
        status, body = await call(
            base,
            "POST",
            "/api/triggers/abandoned_cart/set",
            ALICE,
            {"key": "delay", "value": "99999d"},
        )
        assert status == 400
        assert "at most 3650d (ten years)" in body["error"], body
        status, body = await call(
            base, "POST", "/api/triggers/abandoned_cart/set", ALICE, {"key": "delay", "value": "1h"}
        )
        assert body["changes"] == [
            {"key": "triggers.abandoned_cart.delay", "old": "10m", "new": "1h"}
        ]
        status, state = await call(base, "GET", "/api/state", BOB)
        cart = next(t for t in state["triggers"] if t["name"] == "abandoned_cart")
        delay = next(s for s in cart["settings"] if s["key"] == "delay")
        assert delay == {
            "key": "delay",
            "value": "1h",
            "file": "10m",
            "default": "30m",
            "override": "1h",
        }
        assert [t["state"] for t in state["triggers"] if t["name"] == "welcome"] == ["off"]
        assert state["user"] == {"name": "bob", "role": "viewer"}

        status, body = await call(base, "POST", "/api/triggers/abandoned_cart/reset", ALICE, {})
        assert body["changes"] == [
            {"key": "triggers.abandoned_cart.delay", "old": "1h", "new": "10m"}
        ]
    client = redis.Redis.from_url(db)
    assert read_overrides(client) == {
        "triggers.welcome.enabled": "false",
        "triggers.welcome.shadow": "true",
    }
    history = [
        (h["by"], h["source"], h["key"], h["old"], h["new"]) for h in read_history(client, 10)
    ]
    assert history == [
        ("alice", "console reset", "triggers.abandoned_cart.delay", "1h", "10m"),
        ("alice", "console", "triggers.abandoned_cart.delay", "10m", "1h"),
        ("alice", "console", "triggers.welcome.enabled", "true", "false"),
        ("alice", "console", "triggers.welcome.shadow", "false", "true"),
    ]
    # the CLI sees the console's changes: one source of truth
    listed = subprocess.run(
        [sys.executable, "-m", "kairos.cli", "triggers", "list", "welcome", "--json",
         "--redis", db, "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert '"welcome": {\n      "on": false,\n      "shadow": true' in listed.stdout


async def test_bad_requests_get_one_line_and_change_nothing(
    config: Path, db: str, tmp_path: Path
) -> None:
    control = Control(str(config), "--config", db)
    async with serving(control, tmp_path) as base:
        cases = [
            ("POST", "/api/triggers/welcome/state", ALICE, {"state": "maybe"}, "", 400,
             "state must be one of on, off, shadow; got 'maybe'"),
            ("POST", "/api/triggers/welcom/state", ALICE, {"state": "off"}, "", 404,
             "no trigger named 'welcom'"),
            ("POST", "/api/triggers/welcome/set", ALICE, None, "{not json", 400,
             "the request is not valid JSON"),
            ("POST", "/api/triggers/welcome/set", ALICE, ["a"], "", 400, "expected a JSON object"),
            ("POST", "/api/triggers/welcome/set", ALICE, {"key": "channel", "value": 3}, "", 400,
             "value: expected text"),
            ("GET", "/api/figures?range=2y", ALICE, None, "", 400,
             "range must be one of 1h, 24h, 7d; got '2y'"),
            ("GET", "/api/history?limit=lots", ALICE, None, "", 400,
             "limit must be a whole number from 1 to 500, got 'lots'"),
            ("POST", "/api/preview", ALICE, {"file": "x.jsonl", "changes": []}, "", 400,
             f"no recorded event file named 'x.jsonl'; there are: none: put *.jsonl files in {tmp_path}"),
            ("POST", "/api/apply", ALICE, {"changes": []}, "", 400, "no changes to apply"),
            ("GET", "/api/nothing", ALICE, None, "", 404, "Not Found"),
            ("POST", "/api/triggers/welcome/state", BOB, {"state": "off"}, "", 403,
             "bob is a viewer: viewers see everything and change nothing; ask an admin"),
            ("GET", "/api/state", basic("alice", "wrong-secret"), None, "", 401,
             "sign in: a console user's name and secret, or a bearer token"),
            ("GET", "/api/state", {"Authorization": "Bearer nope"}, None, "", 401,
             "sign in: a console user's name and secret, or a bearer token"),
            ("POST", "/api/triggers/welcome/state", {**ALICE, "Origin": "http://evil.example"},
             {"state": "off"}, "", 403,
             "a change must come from this console's own page, not http://evil.example"),
        ]  # fmt: skip
        for method, path, headers, body, raw, status, message in cases:
            got = await call(base, method, path, headers, body, raw)
            assert got[0] == status and got[1]["error"] == message, (path, got)
        async with (  # a form post from another page
            aiohttp.ClientSession() as session,
            session.post(
                base + "/api/triggers/welcome/state", data={"state": "off"}, headers=ALICE
            ) as answer,
        ):
            assert answer.status == 415
        # a bearer token signs in as its user
        status, state = await call(
            base, "GET", "/api/state", {"Authorization": "Bearer bob-secret-22"}
        )
        assert (status, state["user"]["name"]) == (200, "bob")
    client = redis.Redis.from_url(db)
    assert read_overrides(client) == {} and read_history(client, 5) == []


async def test_redis_going_away_is_one_line_not_a_traceback(config: Path, tmp_path: Path) -> None:
    server = start_redis_process()
    control = Control(str(config), "--config", server.url)
    async with serving(control, tmp_path) as base:
        assert (await call(base, "GET", "/api/state", ALICE))[0] == 200
        server.stop()
        status, body = await call(
            base, "POST", "/api/triggers/welcome/state", ALICE, {"state": "off"}
        )
        assert status == 503
        assert body["error"].startswith(f"cannot reach Redis at {server.url}: ")
        assert body["error"].endswith("; nothing changed")
        assert "Traceback" not in body["error"]


# --- start-up mistakes: one line, non-zero, no traceback --------------------------------------


def console(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAIROS_CONSOLE_")}
    return subprocess.run(
        [sys.executable, "-m", "kairos.cli", "console", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_mistakes_are_one_line(
    config: Path, db: str, tmp_path: Path, bootstrap: str
) -> None:
    users = "alice:admin:alice-secret-1"
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    closed = free_port()
    base = ["--config", str(config), "--redis", db]
    cases = [
        ({}, base, "kairos console: no console users: set KAIROS_CONSOLE_USERS=name:role:secret"),
        ({"KAIROS_CONSOLE_USERS": "alice:boss:alice-secret-1"}, base,
         "kairos console: KAIROS_CONSOLE_USERS entry 1 (alice): role must be admin or viewer, got 'boss'"),
        ({"KAIROS_CONSOLE_USERS": "alice:admin:short"}, base,
         "kairos console: KAIROS_CONSOLE_USERS entry 1 (alice): the secret must have at least 8 characters"),
        ({"KAIROS_CONSOLE_USERS": "alice:admin:same-secret,bob:viewer:same-secret"}, base,
         "kairos console: KAIROS_CONSOLE_USERS entry 2 (bob): the same secret as another user"),
        ({"KAIROS_CONSOLE_USERS": users}, ["--config", str(tmp_path / "none.yaml")],
         f"kairos console: {tmp_path / 'none.yaml'}: no such config file (from --config)"),
        ({"KAIROS_CONSOLE_USERS": users}, ["--config", str(config), "--redis", f"redis://127.0.0.1:{closed}/0"],
         f"kairos console: cannot reach the Redis at redis://127.0.0.1:{closed}/0 (from --redis)"),
        ({"KAIROS_CONSOLE_USERS": users}, [*base, "--bootstrap", f"127.0.0.1:{closed}"],
         f"kairos console: cannot reach the Kafka broker at 127.0.0.1:{closed} (from --bootstrap)"),
        ({"KAIROS_CONSOLE_USERS": users}, [*base, "--port", "70000"],
         "kairos console: argument --port: 70000 is too large: expected at most 65535"),
        ({"KAIROS_CONSOLE_USERS": users, "KAIROS_CONSOLE_PORT": "http"}, base,
         "kairos console: KAIROS_CONSOLE_PORT must be a port number from 0 to 65535, got 'http'"),
        ({"KAIROS_CONSOLE_USERS": users}, [*base, "--bootstrap", bootstrap, "--port", str(taken.getsockname()[1])],
         f"kairos console: cannot listen on 127.0.0.1:{taken.getsockname()[1]}: address already in use; choose another --port"),
    ]  # fmt: skip
    try:
        for env, args, message in cases:
            done = console(*args, env=env)
            assert done.returncode != 0, (args, done.stdout)
            assert done.stderr.startswith(message), (message, done.stderr)
            assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    finally:
        taken.close()


def test_users_come_from_a_file_too(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# who may sign in\nalice:admin:alice-secret-1\n\nbob:viewer:bob-secret-22\n")
    users = users_from_env({"KAIROS_CONSOLE_USERS_FILE": str(path)})
    assert [(u.name, u.role) for u in users] == [("alice", "admin"), ("bob", "viewer")]
    assert "secret" not in repr(users)
    with pytest.raises(UserError, match="KAIROS_CONSOLE_USERS_FILE: cannot read"):
        users_from_env({"KAIROS_CONSOLE_USERS_FILE": str(tmp_path / "missing")})
