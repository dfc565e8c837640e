"""Generic webhook: the message as JSON, signed so the receiver can trust it.

Signing (the scheme of Stripe and Slack request signing): the sender puts the unix time
in ``X-Kairos-Timestamp`` and ``sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``
in ``X-Kairos-Signature``. The receiver recomputes the HMAC over the exact raw body and
rejects timestamps older (or newer) than a tolerance, so a captured request cannot be
replayed later. ``verify_signature`` is that receiver check.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp
import orjson

from channels.providers._http import HttpChannel, json_headers
from channels.providers.base import Message

TIMESTAMP_HEADER = "X-Kairos-Timestamp"
SIGNATURE_HEADER = "X-Kairos-Signature"


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: int | str, body: str | bytes) -> str:
    """``sha256=<hex>`` over ``f"{timestamp}.{body}"``."""
    signed = str(timestamp).encode() + b"." + _bytes(body)
    return "sha256=" + hmac.new(_bytes(secret), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: int | str,
    body: str | bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` and the timestamp is fresh.

    ``now`` is the receiver's clock in unix seconds; timestamps further than
    ``tolerance_s`` from it, in either direction, are rejected (replay protection).
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class WebhookChannel(HttpChannel):
    """POSTs ``Message.to_dict()`` as JSON to ``url`` (or ``msg.to`` when no url is set)."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        name: str = "webhook",
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(url, name=name, timeout_s=timeout_s, session=session)
        self._secret = secret
        self._clock = clock

    async def send(self, msg: Message) -> None:
        body = orjson.dumps(msg.to_dict())
        ts = int(self._clock())
        headers = json_headers(
            {
                TIMESTAMP_HEADER: ts,
                SIGNATURE_HEADER: sign(self._secret, ts, body),
                "X-Kairos-Action-Id": msg.action_id,
            }
        )
        await self._post(self.url or msg.to, data=body, headers=headers)
