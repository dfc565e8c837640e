"""Prints one readable line per message: the demo's channel."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from channels.providers.base import Channel, Message


def format_line(msg: Message) -> str:
    """``SENT 2026-11-30T07:40:00Z email -> ana@x.io [abandoned_cart] a1b2: Subject | body``."""
    when = datetime.fromtimestamp(msg.created_at / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    to = f" -> {msg.to}" if msg.to else ""
    body = " ".join(msg.body.split())
    return (
        f"SENT {when} {msg.channel}{to} customer={msg.customer_id} [{msg.trigger}] "
        f"{msg.action_id}: {msg.subject} | {body}"
    )


class ConsoleChannel(Channel):
    def __init__(self, *, name: str = "console", stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    async def send(self, msg: Message) -> None:
        stream = self._stream or sys.stdout
        print(format_line(msg), file=stream, flush=True)
