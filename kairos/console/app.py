"""The console's web app (aiohttp): one page, and the JSON API it is drawn from.

Every request is signed in (``kairos.console.auth``); a change needs the admin role, a
JSON body and, from a browser, this page's own origin (a form on another site cannot
post JSON here). A mistake answers ``{"error": one line, "field": which}`` with a 4xx
status, in the words of ``kairos triggers``; a bug answers a 500 with no detail, and the
traceback goes to the console's log only.

==========================  ===============================================================
GET  /api/state             triggers: state, settings (value, file, default, override);
                            the file's problems; the user
GET  /api/figures?range=R   per trigger, today (UTC) and the last 7 days; sends and
                            conversions over R (1h by minute, 24h by hour, 7d by day)
GET  /api/history           changes, newest first (``?trigger=NAME&limit=N``)
POST /api/triggers/T/state  ``{"state": "on" | "off" | "shadow"}``
POST /api/triggers/T/set    ``{"key": "delay", "value": "45m"}`` (as written in the file)
POST /api/triggers/T/reset  ``{"key": "delay"}`` or ``{}``: the file rules again
GET  /api/events            recorded event files for a preview
POST /api/preview           ``{"file": F, "changes": [{"trigger", "key", "value"}],
                            "until": "+1d"}``: replay --compare, counts per trigger
POST /api/apply             ``{"changes": [...]}``: make the previewed changes live
==========================  ===============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from aiohttp import web

from core.durations import DAY
from kairos.console import preview
from kairos.console.auth import User, authenticate
from kairos.console.control import Control, Rejected
from kairos.console.figures import RANGES, Tail, Tally, now_ms, start_of_day
from state import overrides as live
from stream.security import redact_url

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
HISTORY_MAX = 500
USER = web.RequestKey("user", User)
CONTROL = web.AppKey("control", Control)
TALLY = web.AppKey("tally", Tally)
TAIL = web.AppKey("tail", Tail)
EVENTS = web.AppKey("events", Path)
USERS = web.AppKey("users", list)
PREVIEWING = web.AppKey("previewing", asyncio.Lock)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(
    control: Control, users: list[User], events: Path, bootstrap: str | None
) -> web.Application:
    app = web.Application(middlewares=[_errors, _signed_in])
    app[CONTROL] = control
    app[USERS] = users
    app[EVENTS] = events
    app[TALLY] = tally = Tally()
    app[PREVIEWING] = asyncio.Lock()
    if bootstrap:
        app[TAIL] = Tail(bootstrap, tally)
        app.cleanup_ctx.append(_following)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/figures", _figures)
    app.router.add_get("/api/history", _history)
    app.router.add_post("/api/triggers/{name}/state", _switch)
    app.router.add_post("/api/triggers/{name}/set", _set)
    app.router.add_post("/api/triggers/{name}/reset", _reset)
    app.router.add_get("/api/events", _events)
    app.router.add_post("/api/preview", _preview)
    app.router.add_post("/api/apply", _apply)
    app.on_response_prepare.append(_headers)
    return app


async def _following(app: web.Application) -> Any:
    task = asyncio.create_task(app[TAIL].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"


# --- middlewares ----------------------------------------------------------------------------


def _error(message: str, status: int, field: str = "") -> web.Response:
    return web.json_response({"error": message, "field": field}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is one line for the page; only a bug's traceback goes to the log."""
    try:
        return await handler(request)
    except Rejected as exc:
        return _error(str(exc), exc.status, exc.key)
    except redis.RedisError as exc:
        where = request.app[CONTROL].redis_url
        return _error(f"cannot reach Redis at {redact_url(where)}: {exc}; nothing changed", 503)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return _error(exc.reason, exc.status)
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        return _error("the console failed on this request (a bug; its log has the details)", 500)


@web.middleware
async def _signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    user = authenticate(request.app[USERS], request.headers.get("Authorization"))
    if user is None:
        return web.json_response(
            {"error": "sign in: a console user's name and secret, or a bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="Kairos console", charset="UTF-8"'},
        )
    if request.method not in ("GET", "HEAD"):
        if not user.admin:
            return _error(
                f"{user.name} is a viewer: viewers see everything and change nothing; ask an admin",
                403,
            )
        if request.content_type != "application/json":
            return _error("send changes as JSON (Content-Type: application/json)", 415)
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            return _error(f"a change must come from this console's own page, not {origin}", 403)
    request[USER] = user
    return await handler(request)


# --- pages and reading ----------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def _state(request: web.Request) -> web.Response:
    snapshot = await asyncio.to_thread(request.app[CONTROL].snapshot)
    user = request[USER]
    snapshot["user"] = {"name": user.name, "role": user.role}
    return web.json_response(snapshot)


async def _figures(request: web.Request) -> web.Response:
    chosen = request.query.get("range", "24h")
    if chosen not in RANGES:
        raise Rejected(f"range must be one of {', '.join(RANGES)}; got {chosen!r}", "range")
    tally, tail = request.app[TALLY], request.app.get(TAIL)
    now = now_ms()
    span, step = RANGES[chosen]
    return web.json_response(
        {
            "now": now,
            "today": tally.summary(start_of_day(now)),
            "week": tally.summary(now - 7 * DAY),
            "series": tally.series(span, step, now),
            "range": chosen,
            "reading": {
                "caught_up": bool(tail and tail.caught_up),
                "error": tail.error if tail else "no broker given: figures are off",
            },
        }
    )


async def _history(request: web.Request) -> web.Response:
    name = request.query.get("trigger") or None
    control = request.app[CONTROL]
    if name:
        control.check_trigger(name)
    limit = _int(request.query.get("limit", "50"), "limit", 1, HISTORY_MAX)
    entries = await asyncio.to_thread(control.history, name, limit)
    return web.json_response(entries)


async def _events(request: web.Request) -> web.Response:
    folder = request.app[EVENTS]
    return web.json_response({"folder": str(folder), "files": preview.event_files(folder)})


# --- changes --------------------------------------------------------------------------------


async def _switch(request: web.Request) -> web.Response:
    body = await _body(request)
    state = _text(body, "state")
    control, user = request.app[CONTROL], request[USER]
    changes = await asyncio.to_thread(control.switch, request.match_info["name"], state, user.name)
    return web.json_response({"changes": [asdict(c) for c in changes]})


async def _set(request: web.Request) -> web.Response:
    body = await _body(request)
    key, value = _text(body, "key"), _text(body, "value")
    control, user = request.app[CONTROL], request[USER]
    changes = await asyncio.to_thread(
        control.set, request.match_info["name"], key, value, user.name
    )
    return web.json_response({"changes": [asdict(c) for c in changes]})


async def _reset(request: web.Request) -> web.Response:
    body = await _body(request)
    key = body.get("key") or None
    if key is not None and not isinstance(key, str):
        raise Rejected("key must be text", "key")
    control, user = request.app[CONTROL], request[USER]
    changes = await asyncio.to_thread(control.reset, request.match_info["name"], key, user.name)
    return web.json_response({"changes": [asdict(c) for c in changes]})


async def _preview(request: web.Request) -> web.Response:
    body = await _body(request)
    path = preview.event_file(request.app[EVENTS], _text(body, "file"))
    until = preview.until_of(str(body.get("until") or ""))
    changes = _changes(body)
    control = request.app[CONTROL]
    running, *_ = await asyncio.to_thread(control.running)
    pending = control.pending_config(running, changes)
    async with request.app[PREVIEWING]:  # one replay at a time: it takes a core
        result = await asyncio.to_thread(preview.preview, path, running, pending, until)
    result["changes"] = [
        {"key": k, "running": live.shown(live.flatten(running).get(k)), "pending": v}
        for k, v in changes.items()
    ]
    return web.json_response(result)


async def _apply(request: web.Request) -> web.Response:
    body = await _body(request)
    control, user = request.app[CONTROL], request[USER]
    changes = _changes(body)
    if not changes:
        raise Rejected("no changes to apply", "changes")
    done = await asyncio.to_thread(control.apply, changes, user.name)
    return web.json_response({"changes": [asdict(c) for c in done]})


# --- request bodies -------------------------------------------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Rejected("the request is not valid JSON") from None
    if not isinstance(body, dict):
        raise Rejected("expected a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise Rejected(f"{name}: expected text", name)
    return value


def _int(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Rejected(f"{name} must be a whole number from {low} to {high}, got {raw!r}", name)
    return value


def _changes(body: dict[str, Any]) -> dict[str, str]:
    """``[{"trigger", "key", "value"}]`` -> dotted key -> value (validated where applied)."""
    raw = body.get("changes", [])
    if not isinstance(raw, list) or len(raw) > 100:
        raise Rejected("changes: expected a list of {trigger, key, value}", "changes")
    out: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise Rejected("changes: expected a list of {trigger, key, value}", "changes")
        name, key, value = (_text(item, f) for f in ("trigger", "key", "value"))
        out[live.override_key(name, key)] = value
    return out
