"""What the dispatcher knows about a customer: addresses, consent, opt-outs, template fields.

``actions`` records carry no profile, so the dispatcher keeps its own small directory in
Redis, fed by the same topics the worker reads: ``profiles`` (email, phone, push token,
consent, locale, timezone, ``attributes.first_name``) and the ``unsubscribe`` /
``subscribe`` events of ``engagement``. Shared by every dispatcher, it survives restarts.

Keys: ``kairos:contact:{customer_id}`` (the profile fields as JSON) and
``kairos:optout:{customer_id}`` (a set of channels, ``all`` included). A profile
tombstone (right to be forgotten) runs :func:`forget_customer`: both keys, the
customer's frequency-cap history and their queued messages go.

Consent follows ``core.policy.has_consent``: only customer channels need it, an
unsubscribe wins, and a profile that says nothing about a channel allows it. Because the
directory and ``actions`` are different topics, an unsubscribe published a moment before
an action may be read after it: the re-check closes the window between decision and
send (minutes to hours for deferred messages), not the last milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from channels.idempotency import DeliveryLedger
from channels.policy import contacted_key
from channels.schedule import Schedule
from core.model import Event, Profile
from core.policy import CUSTOMER_CHANNELS

_ADDRESS_FIELD = {"email": "email", "sms": "phone", "push": "push_token"}


def contact_key(customer_id: str) -> str:
    return f"kairos:contact:{customer_id}"


def optout_key(customer_id: str) -> str:
    return f"kairos:optout:{customer_id}"


@dataclass(frozen=True, slots=True)
class Contact:
    profile: dict[str, Any] | None = None
    optouts: frozenset[str] = field(default_factory=frozenset)

    def allows(self, channel: str) -> bool:
        if channel not in CUSTOMER_CHANNELS:
            return True
        if "all" in self.optouts or channel in self.optouts:
            return False
        consent = (self.profile or {}).get("consent") or {}
        return bool(consent.get(channel, True))

    def address(self, channel: str) -> str:
        """The email, phone or push token for ``channel``; "" when unknown or not needed."""
        name = _ADDRESS_FIELD.get(channel)
        return str((self.profile or {}).get(name) or "") if name else ""

    def template_values(self) -> dict[str, Any]:
        p = self.profile or {}
        keys = ("email", "phone", "locale", "timezone", "first_name")
        return {k: p[k] for k in keys if p.get(k) is not None}


def _profile_fields(profile: Profile) -> dict[str, Any]:
    return {
        "email": profile.email,
        "phone": profile.phone,
        "push_token": profile.push_token,
        "timezone": profile.timezone,
        "locale": profile.locale,
        "first_name": profile.attributes.get("first_name"),
        "consent": profile.consent,
    }


class ContactBook:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def on_profile(self, customer_id: str, profile: Profile | None) -> None:
        if profile is None:
            await forget_customer(self._redis, customer_id)
        else:
            await self._redis.set(contact_key(customer_id), orjson.dumps(_profile_fields(profile)))

    async def on_engagement(self, ev: Event) -> None:
        """Apply ``unsubscribe`` / ``subscribe``; other engagement events change nothing."""
        key = optout_key(ev.customer_id)
        if ev.type == "unsubscribe" and ev.channel:
            await self._redis.sadd(key, ev.channel)
        elif ev.type == "subscribe" and ev.channel == "all":
            await self._redis.delete(key)
        elif ev.type == "subscribe" and ev.channel:
            await self._redis.srem(key, ev.channel, "all")

    async def get(self, customer_id: str) -> Contact:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(contact_key(customer_id))
            pipe.smembers(optout_key(customer_id))
            raw, optouts = await pipe.execute()
        profile = orjson.loads(raw) if raw else None
        return Contact(profile, frozenset(o.decode() for o in optouts))


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What :func:`forget_customer` removed."""

    keys: int  # contact, opt-outs and frequency-cap history: keys that existed
    dropped: tuple[str, ...]  # action ids of queued messages that will not be sent


async def forget_customer(redis: Redis, customer_id: str) -> Forgotten:
    """Delete everything Redis holds about ``customer_id``; safe to repeat.

    The contact (addresses, name, locale, consent), opt-outs, the frequency-cap history
    (``kairos:contacted:``) and queued messages (``channels.schedule``). A dropped
    message is marked done in the delivery ledger, so an ``actions`` record read again
    after a restart is not queued again. Ledger keys are per ``action_id`` and hold a
    state, or for the moment between a send and its ``deliveries`` record, that record
    (``customer_id``, outcome, no address); they expire after 7 days.
    """
    keys = await redis.delete(
        contact_key(customer_id), optout_key(customer_id), contacted_key(customer_id)
    )
    dropped = await Schedule(redis, lease_ms=0).drop_customer(customer_id)
    ledger = DeliveryLedger(redis, lease_ms=0)
    for action_id in dropped:
        await ledger.done(action_id)
    return Forgotten(int(keys), tuple(dropped))
