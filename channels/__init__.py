"""Outbound channels: one module per provider behind one small interface.

``base`` (Message, Channel, DeliveryError), ``resilience`` (RetryPolicy, CircuitBreaker,
deliver, ChannelPool) and ``settings`` (channel_from_env) are the public entry points.
"""

from channels.base import Channel, DeliveryError, Message
from channels.resilience import ChannelPool, CircuitBreaker, DeliveryOutcome, RetryPolicy, deliver
from channels.settings import channel_from_env

__all__ = [
    "Channel",
    "ChannelPool",
    "CircuitBreaker",
    "DeliveryError",
    "DeliveryOutcome",
    "Message",
    "RetryPolicy",
    "channel_from_env",
    "deliver",
]
