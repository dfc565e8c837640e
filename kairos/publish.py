"""``kairos publish FILE.jsonl``: produce contract events from a file, reporting bad lines.

Each line is one event object (its topic follows from its ``type``), or a
profile record ``{"topic": "profiles", "customer_id": ..., "value": {...} | null}``.
Lines are checked by the decoder ``kairos replay`` uses (``stream.events.decode_line``,
the worker's checks in their file form), so every command words a problem the same way;
the first few are shown with their line numbers, and a count. Bad lines are not
published, unless ``--include-invalid`` (to exercise the dead-letter path). The whole
file is checked before the broker is reached.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from core.model import Event
from kairos import inputs
from kairos.errors import UserError
from kairos.replay.report import invalid_lines
from stream.events import TOPIC_OF, Rejection, decode_line

_SHOWN_ERRORS = 5
_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_]{1,32})"')
_CUSTOMER = re.compile(rb'"customer_id"\s*:\s*"([^"\\]{1,128})"')

Record = tuple[str, bytes | None, bytes | None]  # (topic, key, value)


@dataclass(slots=True)
class Checked:
    """A file's records ready to publish, and what was wrong with the others."""

    records: list[Record] = field(default_factory=list)
    lines: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)  # "file:line: reason", the first few


def read_records(path: str | Path, include_invalid: bool = False) -> Checked:
    """Decode every line of ``path``; invalid ones become records only with ``include_invalid``."""
    checked = Checked()
    data = inputs.readable_file(path, "event file").read_bytes()
    for no, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        checked.lines += 1
        item = decode_line(line)
        if isinstance(item, Event):
            checked.records.append((item.topic, item.customer_id.encode(), line))
        elif isinstance(item, Rejection):
            checked.invalid += 1
            if len(checked.errors) < _SHOWN_ERRORS:
                checked.errors.append(f"{path}:{no}: {item.error}")
            if include_invalid:
                checked.records.append(_as_is(line))
        else:  # a profile record: its value goes to ``profiles``, keyed by the customer
            obj = orjson.loads(line)
            value = obj.get("value")
            raw = None if value is None else orjson.dumps(value)
            checked.records.append(("profiles", obj["customer_id"].encode(), raw))
    return checked


def _as_is(line: bytes) -> Record:
    """A bad line published unchanged, to the topic and key it seems meant for."""
    kind = _TYPE.search(line)
    customer = _CUSTOMER.search(line)
    topic = TOPIC_OF.get(kind.group(1).decode(), "clickstream") if kind else "clickstream"
    return topic, customer.group(1) if customer else None, line


async def publish(bootstrap: str, records: list[Record]) -> int:
    from aiokafka import AIOKafkaProducer

    from stream.security import kafka_client_kwargs

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **kafka_client_kwargs())
    try:
        await producer.start()
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()  # also after a failed start: no "Unclosed" warning
    return len(records)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="JSON lines: one contract event (or profile record) a line")
    parser.add_argument("--bootstrap", help="Kafka host:port (default: from $BROKER_URL)")
    parser.add_argument(
        "--include-invalid", action="store_true", help="publish bad lines too (dead-letter tests)"
    )


def run(args: argparse.Namespace) -> int:
    checked = read_records(args.file, args.include_invalid)
    for line in invalid_lines(checked.errors, checked.invalid):
        print(line, file=sys.stderr)
    if checked.lines and checked.invalid == checked.lines and not args.include_invalid:
        raise UserError(
            f"no valid record in {args.file}: {checked.invalid:,} invalid line(s), the first "
            "shown above; nothing published",
            code=1,
        )
    broker = inputs.broker(args.bootstrap)
    with inputs.reaching("Kafka broker", broker):
        sent = asyncio.run(publish(broker.value, checked.records))
    skipped = "" if args.include_invalid else " not published"
    bad = f"; {checked.invalid:,} invalid line(s){skipped}" if checked.invalid else ""
    print(f"published {sent:,} records to {broker.value}{bad}")
    return 1 if checked.invalid else 0
