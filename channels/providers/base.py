"""What every channel shares: the message it sends, the error it raises, the interface.

A channel is one outbound integration (email, SMS, a webhook...). It knows the wire
format of its provider and nothing about retries, circuit breaking or Kafka: those
live in ``channels.resilience`` and in the dispatcher that feeds it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One action ready to send, addressed and rendered.

    ``to`` is what the channel needs to reach the customer: an email address, a phone
    number (E.164), a push token, or a URL; channels with a fixed endpoint (slack,
    wecom, console) ignore it. ``created_at`` is when the engine decided (epoch ms,
    the action's ``decided_at``); it measures decision-to-delivery latency.
    """

    action_id: str
    channel: str
    customer_id: str
    trigger: str
    subject: str
    body: str
    to: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The message as plain JSON-ready data (the webhook body)."""
        data = asdict(self)
        data["payload"] = dict(self.payload)
        return data


class DeliveryError(Exception):
    """A send failed. ``retryable`` says whether the same message may succeed later.

    Retryable: the provider was down, slow, overloaded (5xx, 429, timeouts, refused
    connections). Not retryable: the provider understood and rejected this message
    (4xx, unknown recipient, bad credentials): retrying would fail the same way.
    ``retry_after_s`` carries a provider's ``Retry-After`` hint when it gave one.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


class Channel(ABC):
    """One outbound integration. ``send`` delivers one message or raises DeliveryError."""

    name: str

    @abstractmethod
    async def send(self, msg: Message) -> None:
        """Deliver ``msg`` once; raise DeliveryError on failure. No retries here."""

    async def close(self) -> None:  # noqa: B027 - most channels hold nothing to release
        """Release connections. Safe to call twice."""

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
