"""The provider end of the webhook channel: verifies signatures and counts every arrival.

An arrival is counted when a correctly signed request has been read, before the
answer: a sender killed while waiting for the answer has still delivered (that is
what "maybe sent" means to a provider). ``delay_s`` makes the receiver slow, so many
requests are on the wire when a dispatcher dies.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from channels.providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from kairos.launcher import LOOPBACK, free_port

ACTION_ID_HEADER = "X-Kairos-Action-Id"


@dataclass(slots=True)
class Arrivals:
    """What reached the receiver."""

    raw: list[tuple[str, float]] = field(default_factory=list)  # (action_id, unix time)
    bad_signature: int = 0
    mismatched_id: int = 0  # header and body disagree on the action_id

    def counts(self) -> Counter[str]:
        return Counter(action_id for action_id, _ in self.raw)

    @property
    def last_at(self) -> float:
        return self.raw[-1][1] if self.raw else 0.0


class WebhookReceiver:
    """An aiohttp server on a free loopback port; ``url`` goes in ``KAIROS_WEBHOOK_URL``."""

    def __init__(self, secret: str, *, delay_s: float = 0.0) -> None:
        self.secret = secret
        self.delay_s = delay_s
        self.port = free_port()
        self.arrivals = Arrivals()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        # Many concurrent requests from one dispatcher: no keep-alive limits to hit.
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = verify_signature(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            now=time.time(),
        )
        if not signed:
            self.arrivals.bad_signature += 1
            return web.Response(status=401, text="bad signature")
        action_id = request.headers.get(ACTION_ID_HEADER, "")
        if f'"action_id":"{action_id}"'.encode() not in body:
            self.arrivals.mismatched_id += 1
        self.arrivals.raw.append((action_id, time.time()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(text="ok")
