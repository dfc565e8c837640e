"""What the bench sends: a fast backlog, paced live traffic with markers, a block of carts."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from kairos.simulate import Traffic, generate


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def produce_fast(
    bootstrap: str, records: Iterable[tuple[str, str, dict]], partitions: int
) -> int:
    """Send records as whole batches per partition (the same key -> partition as any producer)."""
    partitioner = DefaultPartitioner()
    parts = list(range(partitions))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8_388_608)
    await producer.start()
    count, pending = 0, []
    try:
        grouped: dict[tuple[str, int], list[tuple[bytes, bytes]]] = defaultdict(list)

        async def drain() -> None:
            for (topic, partition), rows in grouped.items():
                batch = producer.create_batch()
                for key, value in rows:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        pending.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None)
                pending.append(await producer.send_batch(batch, topic, partition=partition))
            grouped.clear()

        for topic, key, value in records:
            k = key.encode()
            grouped[(topic, partitioner(k, parts, parts))].append((k, orjson.dumps(value)))
            count += 1
            if count % 50_000 == 0:
                await drain()
        await drain()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


def backlog(customers: int, events: int, seed: int = 7) -> list[tuple[str, str, dict]]:
    """Simulated traffic stamped over the last minute: event time is "now", timers run live."""
    end = now_ms()
    return list(generate(customers, events, seed, end - 60_000, 60_000))


async def paced(
    bootstrap: str, customers: int, rate: float, seconds: float, marker_every: int = 20
) -> int:
    """Live traffic at ``rate`` events/s; every ``marker_every``-th is an NPS 0 from a new
    customer (``lat-...``), which nps_detractor decides on in the same call. The marker's
    send time is in its event_id, so the bench can match each decision to its cause."""
    traffic = Traffic(customers, seed=11)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    sent, started = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                ts = now_ms()
                sent += 1
                if sent % marker_every == 0:
                    cid = f"lat-{sent:09d}"
                    value = {"event_id": f"lat-{ts}-{sent}", "type": "nps", "score": 0}
                    value |= {"customer_id": cid, "ts": ts}
                    await producer.send("engagement", orjson.dumps(value), key=cid.encode())
                    continue
                for topic, key, value in traffic.next_records(ts):
                    await producer.send(topic, orjson.dumps(value), key=key.encode())
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def carts(
    n: int, first_due: int, spread_ms: int, delay_ms: int, prefix: str = "tmr"
) -> list[tuple[str, str, dict]]:
    """One add_to_cart each for ``n`` new customers, due ``first_due`` .. ``+spread_ms``."""
    out = []
    for i in range(n):
        ts = first_due + i * spread_ms // n - delay_ms
        cid = f"{prefix}-{i:07d}"
        value = {"event_id": f"{prefix}-{i}", "type": "add_to_cart", "customer_id": cid, "ts": ts}
        value |= {"product_id": "sku-0001", "price": 10.0, "quantity": 1}
        out.append(("clickstream", cid, value))
    return out
