"""Mobile push in the shape of the FCM HTTP v1 API.

``POST {url}`` with ``Authorization: Bearer <token>`` and
``{"message": {"token", "notification": {"title", "body"}, "data": {...}}}``. FCM wants
every ``data`` value as a string: strings pass through, anything else is JSON-encoded.
``data`` always carries ``action_id`` and ``trigger`` so the app can report the
``push_open`` engagement event with the action that caused it. For FCM, url is
``https://fcm.googleapis.com/v1/projects/{project}/messages:send`` and the token an
OAuth2 access token minted outside Kairos.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from channels.providers._http import HttpChannel, json_headers
from channels.providers.base import DeliveryError, Message

# Keys FCM rejects in the data payload.
_RESERVED = frozenset({"from", "notification", "message_type"})
_RESERVED_PREFIXES = ("google", "gcm")


def data_strings(payload: Mapping[str, Any]) -> dict[str, str]:
    """Payload as FCM data: string values, reserved keys left out."""
    out = {}
    for key, value in payload.items():
        k = str(key)
        if k in _RESERVED or k.lower().startswith(_RESERVED_PREFIXES):
            continue
        out[k] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return out


def fcm_body(msg: Message) -> dict[str, Any]:
    data = data_strings(msg.payload)
    data.update(action_id=msg.action_id, trigger=msg.trigger)
    return {
        "message": {
            "token": msg.to,
            "notification": {"title": msg.subject, "body": msg.body},
            "data": data,
        }
    }


class PushChannel(HttpChannel):
    def __init__(
        self,
        url: str,
        token: str,
        *,
        name: str = "push",
        timeout_s: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(url, name=name, timeout_s=timeout_s, session=session)
        self._token = token

    async def send(self, msg: Message) -> None:
        if not msg.to:
            raise DeliveryError("push: message has no device token", retryable=False)
        headers = json_headers({"Authorization": f"Bearer {self._token}"})
        await self._post(self.url, data=orjson.dumps(fcm_body(msg)), headers=headers)
