"""``/metrics``, ``/health`` (the process is alive) and ``/ready`` (can do its job)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, str]]]]


def make_app(ready: ReadyCheck) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readiness(_: web.Request) -> web.Response:
        ok, checks = await ready()
        return web.json_response(
            {"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503
        )

    app = web.Application()
    app.add_routes(
        [web.get("/metrics", metrics), web.get("/health", health), web.get("/ready", readiness)]
    )
    return app


async def serve(port: int, ready: ReadyCheck, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(make_app(ready), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
