"""``kairos publish FILE.jsonl``: produce contract events from a file, reporting bad lines.

Each line is one event object (its topic follows from its ``type``), or a
profile record ``{"topic": "profiles", "customer_id": ..., "value": {...} | null}``.
Lines that fail the contract are reported with their line numbers and not
published, unless ``--include-invalid`` (to exercise the dead-letter path).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator

import orjson

from kairos.simulate import TOPIC_OF
from stream.events import Rejection, decode_event, decode_profile


def read_records(
    path: str, include_invalid: bool = False
) -> Iterator[tuple[int, str | None, bytes | None, bytes | None, str | None]]:
    """Yield ``(line_no, topic, key, value, error)``; ``topic`` is None for unusable lines."""
    with open(path, "rb") as lines:
        for no, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield (
                    no,
                    ("clickstream" if include_invalid else None),
                    None,
                    line,
                    f"malformed JSON: {exc}",
                )
                continue
            if isinstance(obj, dict) and obj.get("topic") == "profiles":
                key = str(obj.get("customer_id", "")).encode()
                value = None if obj.get("value") is None else orjson.dumps(obj["value"])
                parsed = decode_profile(value, key)
                error = parsed.error if isinstance(parsed, Rejection) else None
                yield no, "profiles", key, value, error
                continue
            etype = obj.get("type") if isinstance(obj, dict) else None
            topic = TOPIC_OF.get(etype) if isinstance(etype, str) else None
            cid = obj.get("customer_id") if isinstance(obj, dict) else None
            key = cid.encode() if isinstance(cid, str) else None
            if topic is None:
                error = f"unknown or missing event type {etype!r}"
                yield no, ("clickstream" if include_invalid else None), key, line, error
                continue
            ev = decode_event(line, topic, key)
            yield no, topic, key, line, ev.error if isinstance(ev, Rejection) else None


async def publish(path: str, bootstrap: str, include_invalid: bool) -> tuple[int, list[str]]:
    from aiokafka import AIOKafkaProducer

    from stream.security import kafka_client_kwargs

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **kafka_client_kwargs())
    await producer.start()
    sent, problems = 0, []
    try:
        for no, topic, key, value, error in read_records(path, include_invalid):
            if error:
                problems.append(f"{path}:{no}: {error}")
                if not include_invalid or topic is None:
                    continue
            await producer.send(topic, value, key=key)  # type: ignore[arg-type]
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent, problems


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="JSON lines: one contract event (or profile record) a line")
    parser.add_argument("--bootstrap", help="Kafka host:port (default: from $BROKER_URL)")
    parser.add_argument(
        "--include-invalid", action="store_true", help="publish bad lines too (dead-letter tests)"
    )


def run(args: argparse.Namespace) -> int:
    from stream.settings import Settings

    bootstrap = args.bootstrap or Settings().bootstrap
    sent, problems = asyncio.run(publish(args.file, bootstrap, args.include_invalid))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"published {sent} records; {len(problems)} bad line(s)")
    return 1 if problems else 0
