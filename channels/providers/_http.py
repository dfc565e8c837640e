"""The HTTP plumbing shared by the webhook, SMS, push, Slack and WeCom channels.

One lazily created ``aiohttp.ClientSession`` per channel (connection reuse), and one
place that turns HTTP answers and transport errors into DeliveryError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from channels.providers.base import Channel, DeliveryError

# 408 Request Timeout and 429 Too Many Requests are the 4xx that may succeed later.
RETRYABLE_4XX = frozenset({408, 429})
_ERROR_BODY_CHARS = 200


def classify_status(status: int, body: bytes, headers: Mapping[str, str]) -> None:
    """Return for 2xx; raise DeliveryError (retryable for 5xx, 408 and 429) otherwise."""
    if 200 <= status < 300:
        return
    text = body[:_ERROR_BODY_CHARS].decode("utf-8", "replace").strip()
    reason = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    retryable = status >= 500 or status in RETRYABLE_4XX
    raise DeliveryError(
        reason, retryable=retryable, status=status, retry_after_s=_retry_after(headers)
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from APIs, fall back to our own backoff
        return None


class HttpChannel(Channel):
    """Base for channels that POST to an HTTP endpoint (``url``)."""

    default_name = "http"

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        timeout_s: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.name = name or self.default_name
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._owns_session = session is None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def _post(
        self,
        url: str,
        *,
        data: bytes | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """POST and return the response body; raise DeliveryError unless 2xx."""
        if not url:
            raise DeliveryError(f"{self.name}: no URL configured", retryable=False)
        try:
            async with self._client().post(url, data=data, headers=headers) as resp:
                body = await resp.read()
                classify_status(resp.status, body, resp.headers)
                return body
        except aiohttp.ClientError as exc:  # refused, reset, DNS, TLS, aiohttp's own timeout
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        except TimeoutError as exc:
            raise DeliveryError("HTTP request timed out", retryable=True) from exc

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None


def json_headers(extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if extra:
        headers.update({k: str(v) for k, v in extra.items()})
    return headers
