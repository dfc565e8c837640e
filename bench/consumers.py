"""The comparison consumers, one per process: each drains the pre-produced backlog and times it.

    python -m bench.consumers MODE --bootstrap HOST:PORT --records N --group G [--partitions P]

MODE is ``ceiling`` (bare aiokafka ``async for`` + orjson + a per-customer dict update),
``ceiling-getmany`` (the same over ``getmany()`` batches), ``faust`` (a stateless agent on
our ``create_app``: decode only), ``faust-defaults`` (the same agent on a plain
``faust.App``), ``quix`` (Quix Streams with a per-customer RocksDB state doing the same
minimal update). Each prints one JSON line ``{"mode", "records", "seconds", "eps"}``: the
rate from the first record received to the N-th, so start-up and group join are excluded
for every system alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

import orjson

TOPICS = ("clickstream", "orders", "engagement", "profiles")


class Clock:
    """Counts records; prints the result and ends the process at the N-th."""

    def __init__(self, mode: str, records: int) -> None:
        self.mode, self.records, self.count, self.first = mode, records, 0, 0.0

    def tick(self, n: int = 1) -> None:
        if not self.count:
            self.first = time.perf_counter()
        self.count += n
        if self.count >= self.records:
            self.done()

    def done(self) -> None:
        seconds = time.perf_counter() - self.first
        out = {"mode": self.mode, "records": self.count, "seconds": round(seconds, 3)}
        out["eps"] = round((self.count - 1) / seconds) if seconds > 0 else 0
        # fd 1 directly: a Faust worker replaces sys.stdout with a logging proxy
        os.write(1, orjson.dumps(out) + b"\n")
        os._exit(0)  # the frameworks' graceful shutdown is not what is measured


def _touch(state: dict, key: bytes, value: bytes) -> None:
    """The minimal per-customer update every comparison does: decode, count, keep last ts."""
    obj = orjson.loads(value)
    s = state.get(key)
    if s is None:
        s = state[key] = [0, 0]
    s[0] += 1
    s[1] = obj.get("ts", 0) if type(obj) is dict else 0


async def ceiling(args: argparse.Namespace, batched: bool) -> None:
    from aiokafka import AIOKafkaConsumer

    clock = Clock("ceiling-getmany" if batched else "ceiling", args.records)
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    state: dict = {}
    if batched:
        while True:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                for m in messages:
                    _touch(state, m.key, m.value)
                clock.tick(len(messages))
    async for m in consumer:
        _touch(state, m.key, m.value)
        clock.tick()


def faust_agent(args: argparse.Namespace, defaults: bool) -> None:
    import faust

    from stream.app import create_app
    from stream.events import decode_event, decode_profile
    from stream.settings import Settings

    clock = Clock("faust-defaults" if defaults else "faust", args.records)
    url = f"kafka://{args.bootstrap}"
    if defaults:
        app = faust.App(
            args.group,
            broker=url,
            topic_partitions=args.partitions,
            key_serializer="raw",
            value_serializer="raw",
            consumer_auto_offset_reset="earliest",
            web_enabled=False,
        )
    else:
        app = create_app(
            Settings(broker_url=url, app_id=args.group, partitions=args.partitions, metrics_port=0)
        )
    source = app.topic(*TOPICS, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="decode")
    async def decode(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            msg = event.message
            if msg.topic == "profiles":
                decode_profile(msg.value, msg.key)
            else:
                decode_event(msg.value, msg.topic, msg.key)
            clock.tick()

    sys.argv = [sys.argv[0]]
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def quix(args: argparse.Namespace) -> None:
    from quixstreams import Application

    clock = Clock("quix", args.records)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="bench-quix-"),
        loglevel="WARNING",
    )

    def touch(value: bytes, state) -> None:  # type: ignore[no-untyped-def]
        obj = orjson.loads(value)
        n = state.get("n", 0)
        state.set("n", n + 1)
        state.set("ts", obj.get("ts", 0) if type(obj) is dict else 0)
        clock.tick()

    frames = [
        app.dataframe(app.topic(t, key_deserializer="bytes", value_deserializer="bytes"))
        for t in TOPICS
    ]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)
    sdf.update(touch, stateful=True)
    app.run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode", choices=["ceiling", "ceiling-getmany", "faust", "faust-defaults", "quix"]
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    if args.mode.startswith("ceiling"):
        asyncio.run(ceiling(args, batched=args.mode == "ceiling-getmany"))
    elif args.mode.startswith("faust"):
        faust_agent(args, defaults=args.mode == "faust-defaults")
    else:
        quix(args)


if __name__ == "__main__":
    main()
