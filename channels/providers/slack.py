"""Slack incoming webhook: ``{"text": fallback, "blocks": [header, section, context]}``.

Slack answers 200 ``ok``, or 4xx with a reason (``invalid_payload``, ``no_service``,
``channel_is_archived``) which are not retried.
"""

from __future__ import annotations

from typing import Any

import orjson

from channels.providers._http import HttpChannel, json_headers
from channels.providers.base import Message

HEADER_MAX = 150  # Slack's limit for plain_text in a header block
SECTION_MAX = 3000  # ... and for text in a section block


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(msg: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if msg.subject:
        blocks.append(
            {"type": "header", "text": {"type": "plain_text", "text": msg.subject[:HEADER_MAX]}}
        )
    if msg.body:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(msg.body)[:SECTION_MAX]}}
        )
    context = " · ".join(
        f"{label} `{escape(value)}`"
        for label, value in (
            ("trigger", msg.trigger),
            ("customer", msg.customer_id),
            ("action", msg.action_id),
        )
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    text = f"{msg.subject}: {msg.body}" if msg.subject else msg.body
    return {"text": escape(text), "blocks": blocks}


class SlackChannel(HttpChannel):
    default_name = "slack"

    async def send(self, msg: Message) -> None:
        await self._post(self.url, data=orjson.dumps(slack_body(msg)), headers=json_headers())
