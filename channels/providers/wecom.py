"""WeCom (企业微信) group robot webhook, markdown message.

``POST {url}`` with ``{"msgtype": "markdown", "markdown": {"content": ...}}``. WeCom
answers HTTP 200 even on failure; the JSON ``errcode`` decides: 0 is success, ``-1``
(system busy) and 45009 (rate limited: 20 messages/minute per robot) are retried,
anything else (bad key 93000, content too long 40058...) is not.
"""

from __future__ import annotations

from typing import Any

import orjson

from channels.providers._http import HttpChannel, json_headers
from channels.providers.base import DeliveryError, Message

CONTENT_MAX_BYTES = 4096
RETRYABLE_ERRCODES = frozenset({-1, 45009})


def wecom_body(msg: Message) -> dict[str, Any]:
    """Subject in bold, body, and a grey footer; the body is cut to fit 4096 bytes."""
    head = f"**{msg.subject}**\n{msg.body}" if msg.subject else msg.body
    tail = f'\n<font color="comment">{msg.trigger} · {msg.action_id}</font>'
    room = CONTENT_MAX_BYTES - len(tail.encode())
    head = head.encode()[: max(room, 0)].decode("utf-8", "ignore")
    return {"msgtype": "markdown", "markdown": {"content": head + tail}}


class WeComChannel(HttpChannel):
    default_name = "wecom"

    async def send(self, msg: Message) -> None:
        raw = await self._post(self.url, data=orjson.dumps(wecom_body(msg)), headers=json_headers())
        try:
            answer = orjson.loads(raw)
            errcode = int(answer.get("errcode", -1))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            raise DeliveryError(f"wecom: unreadable answer {raw[:200]!r}", retryable=True) from exc
        if errcode != 0:
            reason = f"wecom errcode {errcode}: {answer.get('errmsg', '')}"
            raise DeliveryError(reason, retryable=errcode in RETRYABLE_ERRCODES)
