"""``kairos forget CUSTOMER_ID``: the right to be forgotten, in one command.

1. Publishes a profile tombstone (key ``CUSTOMER_ID``, null value) on ``profiles``. Every
   worker then drops the customer's profile (email, phone, push token, name and other
   attributes, timezone, locale, consent) from its state and writes that state to its
   changelog; every dispatcher runs step 2 again when it reads the tombstone, so a
   dispatcher still catching up on older profile records cannot bring the contact back.
2. Deletes what Redis holds on the customer now (``channels.contacts.forget_customer``):
   contact, opt-outs, frequency-cap history and queued messages.

The README's "Forgetting a customer" says what stays (records already on append-only
topics, until retention) and why.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from channels.contacts import Forgotten

MAX_ID_CHARS = 128  # the contract's limit on customer_id


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customer_id", help="the customer to forget (the records' key)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--bootstrap", help="Kafka host:port (default: from $BROKER_URL)")
    parser.add_argument("--redis", help="Redis URL (default: $REDIS_URL)")


async def publish_tombstone(bootstrap: str, customer_id: str) -> tuple[int, int]:
    """Send the null ``profiles`` record and wait for the broker; returns (partition, offset)."""
    from aiokafka import AIOKafkaProducer

    from stream import topics
    from stream.security import kafka_client_kwargs

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        request_timeout_ms=15_000,
        **kafka_client_kwargs(),
    )
    try:
        await producer.start()
        sent = await producer.send_and_wait(topics.PROFILES, None, key=customer_id.encode())
    finally:
        await producer.stop()
    return sent.partition, sent.offset


async def forget_in_redis(redis_url: str, customer_id: str) -> Forgotten:
    import redis.asyncio as aioredis

    from channels.contacts import forget_customer
    from stream.security import redis_kwargs

    client = aioredis.from_url(
        redis_url, socket_timeout=5, socket_connect_timeout=5, **redis_kwargs(redis_url)
    )
    try:
        return await forget_customer(client, customer_id)
    finally:
        await client.aclose()


def _confirmed(customer_id: str) -> bool | None:
    """True/False from the terminal; None when there is no terminal to ask."""
    if not sys.stdin.isatty():
        return None
    answer = input(
        f"Forget customer {customer_id!r}: delete their profile from every worker's state, "
        "their contact, opt-outs, caps and queued messages from Redis? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    import redis
    from aiokafka.errors import KafkaError

    from stream.security import redact_url
    from stream.settings import Settings

    customer_id = args.customer_id
    if not customer_id or len(customer_id) > MAX_ID_CHARS:
        print(f"kairos forget: a customer_id has 1 to {MAX_ID_CHARS} characters", file=sys.stderr)
        return 2
    if not args.yes:
        confirmed = _confirmed(customer_id)
        if confirmed is None:
            print("kairos forget: no terminal to confirm on; add --yes", file=sys.stderr)
            return 2
        if not confirmed:
            print("nothing changed")
            return 1
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # failures are reported below
    settings = Settings()
    bootstrap = args.bootstrap or settings.bootstrap
    redis_url = args.redis or settings.redis_url
    try:
        partition, offset = asyncio.run(publish_tombstone(bootstrap, customer_id))
    except (KafkaError, OSError) as exc:
        print(
            f"kairos forget: could not publish the tombstone to Kafka at {bootstrap} ({exc}); "
            "nothing changed",
            file=sys.stderr,
        )
        return 1
    print(f"tombstone for {customer_id!r} on profiles (partition {partition}, offset {offset})")
    print("  workers drop the profile from state; dispatchers clean Redis when they read it")
    try:
        forgotten = asyncio.run(forget_in_redis(redis_url, customer_id))
    except (redis.RedisError, OSError) as exc:
        print(
            f"kairos forget: Redis at {redact_url(redis_url)} is unavailable ({exc}); the dispatchers "
            "will clean it up when they read the tombstone",
            file=sys.stderr,
        )
        return 1
    print(
        f"  redis: {forgotten.keys} key(s) deleted (contact, opt-outs, frequency caps), "
        f"{len(forgotten.dropped)} queued message(s) dropped"
    )
    return 0
