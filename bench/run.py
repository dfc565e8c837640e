"""The benchmark table, in one go on one Tansu broker: ``python -m bench.run --quick|--full``.

Phases (each a separate process where it consumes, so none shares an event loop):
 1. pre-produce a backlog of simulated traffic (100,000 customers, event time = now);
 2. drain it with the ceiling (bare aiokafka), the stateless Faust agent (ours and, with
    --full, plain Faust defaults), Quix Streams with RocksDB state, then ``kairos worker``;
 3. the same worker: paced live traffic at a fixed rate -> decision latency;
 4. a block of carts (100,000 with --full) due over ~20 s -> timer lateness;
 5. kill -9 the worker and time its replacement to /ready; read the state changelog;
 6. (--full) two workers in a fresh group over the same backlog;
 7. restart of a ``rocksdb://`` worker at 100,000 (and, with --full, 1,000,000) customers
    (bench.restart_scale, on a broker of its own);
 8. state/RSS at 1,000,000 customers in-process (bench.state_size); replay (replay_bench).
Writes bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from bench import traffic
from bench.cpu import cores
from bench.engine import EngineWorker, consumed, drain_rate
from kairos.launcher import create_topics, start_broker, start_redis
from stream import topics

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PARTITIONS = 8
CART_DELAY_S = 90
SIZES = {
    "quick": {
        "events": 60_000,
        "latency_s": 15,
        "timers": 20_000,
        "replay": 100_000,
        "replay_long": 200_000,
        "restart_customers": "100000",
    },
    "full": {
        "events": 300_000,
        "latency_s": 40,
        "timers": 100_000,
        "replay": 300_000,
        "replay_long": 1_000_000,
        "restart_customers": "100000,1000000",
    },
}
BENCH_CONFIG = f"""
engine:
  timer_grace: 0s
policy:
  quiet_hours:
    enabled: false
triggers:
  abandoned_cart:
    delay: {CART_DELAY_S}s
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def last_json(text: str) -> dict | None:
    """The last JSON object line (a Faust worker may prefix it with terminal escapes)."""
    for line in reversed(text.splitlines()):
        start = line.find("{")
        if start >= 0 and line.rstrip().endswith("}"):
            return json.loads(line[start:])
    return None


def run_consumer(mode: str, bootstrap: str, records: int, timeout: float) -> dict | None:
    cmd = [sys.executable, "-m", "bench.consumers", mode, "--bootstrap", bootstrap]
    cmd += ["--records", str(records), "--group", f"bench-{mode}-{uuid.uuid4().hex[:6]}"]
    cmd += ["--partitions", str(PARTITIONS)]
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        log(f"{mode}: no result within {timeout:.0f}s; stderr: {(exc.stderr or '')[-800:]}")
        return None
    result = last_json(out.stdout)
    if result is not None:
        return result
    log(f"{mode}: no result (exit {out.returncode}); stderr tail:\n{out.stderr[-1500:]}")
    return None


async def read_actions(bootstrap: str, stop: asyncio.Event, sink: list, predicate) -> None:
    """Append ``(read_time_ms, record)`` for new ``actions`` records matching ``predicate``."""
    consumer = AIOKafkaConsumer(
        topics.ACTIONS, bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        await consumer.seek_to_end()
        while not stop.is_set():
            for messages in (await consumer.getmany(timeout_ms=20)).values():
                read = time.time_ns() / 1e6
                for m in messages:
                    record = orjson.loads(m.value)
                    if predicate(record):
                        sink.append((read, record))
    finally:
        await consumer.stop()


async def latency_phase(
    bootstrap: str, rate: float, seconds: float, pids: dict[str, int | None] | None = None
) -> dict:
    stop, seen = asyncio.Event(), []
    reader = asyncio.create_task(
        read_actions(
            bootstrap,
            stop,
            seen,
            lambda r: r["trigger"] == "nps_detractor" and r["customer_id"].startswith("lat-"),
        )
    )
    await asyncio.sleep(1.0)  # the reader is at the end of the topic before anything is sent
    cpu: dict[str, float] = {}
    with cores({"bench": os.getpid(), **(pids or {})}, cpu):  # who had the 2 cores
        sent = await traffic.paced(bootstrap, 100_000, rate, seconds)
    await asyncio.sleep(3.0)
    stop.set()
    await reader
    e2e, engine = [], []
    for read, record in seen:
        ts = int(record["source_event_ids"][0].split("-")[1])
        e2e.append(read - ts)
        engine.append(record["decided_at"] - ts)
    markers = sent // 20
    return {
        "offered_eps": rate,
        "seconds": seconds,
        "markers": markers,
        "decisions_seen": len(seen),
        "p50": round(pct(e2e, 0.5), 1),
        "p99": round(pct(e2e, 0.99), 1),
        "p999": round(pct(e2e, 0.999), 1),
        "max": round(max(e2e, default=float("nan")), 1),
        "engine_p50": round(pct(engine, 0.5), 1),
        "engine_p99": round(pct(engine, 0.99), 1),
        "cpu_cores": cpu,
    }


async def burst_latency_phase(
    bootstrap: str,
    rate: float,
    seconds: float,
    n: int,
    engine_eps: float,
    pids: dict[str, int | None] | None = None,
) -> dict:
    """The latency phase while ``n`` cart deadlines fall due at one instant in its middle."""
    load_s = n / max(engine_eps, 500) * 1.5 + 3
    first_due = traffic.now_ms() + int((load_s + seconds / 2) * 1000)
    await traffic.produce_fast(
        bootstrap, traffic.carts(n, first_due, 0, CART_DELAY_S * 1000, prefix="bst"), PARTITIONS
    )
    await asyncio.sleep(max(0.0, load_s - 1.0))  # latency_phase waits 1 s for its reader
    result = await latency_phase(bootstrap, rate, seconds, pids)
    result["burst_deadlines"] = n
    return result


async def timer_phase(bootstrap: str, n: int, engine_eps: float, worker: EngineWorker) -> dict:
    """``n`` new carts whose deadlines fall over 20 s, starting after they are all loaded.

    A new customer's first event costs more than the backlog's average one (a new
    state, a timer, a changelog write): at 1.5x the backlog's time the carts were still
    loading when they fell due on a slow machine, and lateness measured the load. So 3x,
    and ``loaded_before_due_s`` says how much room was left (negative: none).
    """
    spread = 20_000
    load_s = n / max(engine_eps, 500) * 3 + 5
    consumed_before = worker.metric("kairos_events_consumed_total")
    first_due = traffic.now_ms() + int(load_s * 1000)
    stop, seen = asyncio.Event(), []
    reader = asyncio.create_task(
        read_actions(
            bootstrap,
            stop,
            seen,
            lambda r: r["trigger"] == "abandoned_cart" and r["customer_id"].startswith("tmr-"),
        )
    )
    await asyncio.sleep(1.0)
    await traffic.produce_fast(
        bootstrap, traffic.carts(n, first_due, spread, CART_DELAY_S * 1000), PARTITIONS
    )
    pending_peak = 0.0
    loaded_at: float | None = None
    deadline = first_due / 1000 + spread / 1000 + 60
    while len(seen) < n and time.time() < deadline:
        pending_peak = max(pending_peak, worker.metric("kairos_timers_pending"))
        if loaded_at is None and worker.metric("kairos_events_consumed_total") >= (
            consumed_before + n
        ):
            loaded_at = time.time()
        await asyncio.sleep(0.5)
    stop.set()
    await reader
    late = []
    for _, record in seen:
        i = int(record["customer_id"].split("-")[1])
        due = first_due + i * spread // n
        late.append(record["decided_at"] - due)
    return {
        "timers": n,
        "fired": len(seen),
        "pending_peak": int(pending_peak),
        "loaded_before_due_s": None
        if loaded_at is None
        else round(first_due / 1000 - loaded_at, 1),
        "p50": round(pct(late, 0.5), 1),
        "p99": round(pct(late, 0.99), 1),
        "max": round(max(late, default=float("nan")), 1),
    }


async def changelog_sizes(bootstrap: str, topic: str) -> dict:
    """Latest encoded state per customer, read back from the changelog."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    latest: dict[bytes, int] = {}
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while True:
            positions = [await consumer.position(tp) for tp in ends]
            if all(p >= end for p, end in zip(positions, ends.values(), strict=True)):
                break
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for m in messages:
                    latest[m.key] = len(m.value or b"")
    finally:
        await consumer.stop()
    return {
        "customers": len(latest),
        "bytes_per_customer": round(sum(latest.values()) / max(len(latest), 1)),
    }


def worker_env(broker_url: str, redis_url: str, config: Path, app_id: str) -> dict[str, str]:
    return {
        "BROKER_URL": broker_url,
        "REDIS_URL": redis_url,
        "KAIROS_CONFIG": str(config),
        "KAIROS_APP_ID": app_id,
        "KAIROS_PARTITIONS": str(PARTITIONS),
        "KAIROS_LOG_LEVEL": "warning",
    }


def wait_ready(worker: EngineWorker, timeout: float = 60) -> float:
    started = time.monotonic()
    while not worker.ready():
        worker.alive()
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"worker not ready in {timeout}s\n{worker.tail()}")
        time.sleep(0.05)
    return time.monotonic() - started


def run_json(cmd: list[str], timeout: float) -> dict | None:
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    result = last_json(out.stdout)
    if result is not None:
        return result
    log(f"{cmd[2]}: no result:\n{out.stderr[-1500:]}")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="size", const="quick")
    size.add_argument("--full", action="store_const", dest="size", const="full")
    parser.add_argument(
        "--skip", default="", help="comma list: quix,faust,two,replay,state,rocksdb,restart"
    )
    args = parser.parse_args()
    mode = args.size or "quick"
    sizes = SIZES[mode]
    skip = set(filter(None, args.skip.split(",")))
    begun = time.monotonic()
    results: dict = {"mode": mode, "notes": []}
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(start_broker())
        redis = stack.enter_context(start_redis())
        asyncio.run(create_topics(broker.bootstrap, list(topics.ALL), PARTITIONS))
        log(f"broker {broker.bootstrap}, redis {redis.url}; producing {sizes['events']:,} events")
        t = time.monotonic()
        records = asyncio.run(
            traffic.produce_fast(
                broker.bootstrap, traffic.backlog(100_000, sizes["events"]), PARTITIONS
            )
        )
        log(
            f"backlog: {records:,} records (events + first-sight profiles) in {time.monotonic() - t:.1f}s"
        )
        results["backlog_records"] = records

        consumers = ["ceiling", "ceiling-getmany"]
        if "faust" not in skip:
            consumers += ["faust"] + (["faust-defaults"] if mode == "full" else [])
        if "quix" not in skip:
            consumers.append("quix")
        for name in consumers:
            r = run_consumer(name, broker.bootstrap, records, timeout=240)
            log(f"{name}: {r}")
            results[name] = r
            if r is None and name == "quix":
                results["notes"].append("quix: did not start or finish (see stderr)")

        config = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "triggers.yaml"
        config.write_text(BENCH_CONFIG)
        app_id = f"bench-{uuid.uuid4().hex[:6]}"
        env = worker_env(broker.url, redis.url, config, app_id)
        worker = EngineWorker(env)
        stack.callback(worker.stop, signal.SIGKILL)
        results["engine"] = drain_rate([worker], records, timeout=600)
        log(f"engine: {results['engine']}")
        while consumed([worker]) < records:
            time.sleep(0.2)
        results["rss_mb_backlog"] = round(worker.rss_mb(), 1)

        pids = {
            "broker": broker.process.pid if broker.process else None,
            "worker": worker.process.pid,
        }
        results["latency"] = asyncio.run(
            latency_phase(broker.bootstrap, 2000, sizes["latency_s"], pids)
        )
        log(f"latency: {results['latency']}")
        results["latency_burst"] = asyncio.run(
            burst_latency_phase(
                broker.bootstrap, 2000, sizes["latency_s"], 20_000, results["engine"]["eps"], pids
            )
        )
        log(f"latency with a burst of deadlines: {results['latency_burst']}")
        results["timers"] = asyncio.run(
            timer_phase(broker.bootstrap, sizes["timers"], results["engine"]["eps"], worker)
        )
        log(f"timers: {results['timers']}")
        results["rss_mb"] = round(worker.rss_mb(), 1)

        worker.stop(signal.SIGKILL)
        # The same worker again: recovers the state from the changelog
        restarted = EngineWorker(env, port=worker.port)
        stack.callback(restarted.stop, signal.SIGKILL)
        results["recovery_s"] = round(wait_ready(restarted, 120), 2)
        log(f"recovery: {results['recovery_s']}s to /ready")
        results["state"] = asyncio.run(
            changelog_sizes(broker.bootstrap, topics.changelog_topic(app_id))
        )
        log(f"state: {results['state']}")
        restarted.stop()

        if "rocksdb" not in skip:  # the production store: a restart reads only the tail
            env_r = worker_env(broker.url, redis.url, config, f"benchr-{uuid.uuid4().hex[:6]}")
            env_r.update(KAIROS_STORE="rocksdb://", KAIROS_DATA_DIR=tempfile.mkdtemp())
            first = EngineWorker(env_r)
            stack.callback(first.stop, signal.SIGKILL)
            drain_rate([first], records, timeout=600)
            time.sleep(2)  # past a checkpoint: the store holds what the changelog holds
            first.stop(signal.SIGKILL)
            again = EngineWorker(env_r, port=first.port)
            stack.callback(again.stop, signal.SIGKILL)
            results["recovery_rocksdb_s"] = round(wait_ready(again, 120), 2)
            log(f"recovery (rocksdb://): {results['recovery_rocksdb_s']}s to /ready")
            again.stop()

        if mode == "full" and "two" not in skip:
            env2 = worker_env(broker.url, redis.url, config, f"bench2-{uuid.uuid4().hex[:6]}")
            pair = [EngineWorker(env2), EngineWorker(env2)]
            for w in pair:
                stack.callback(w.stop, signal.SIGKILL)
            results["two_workers"] = drain_rate(pair, records, timeout=600)
            log(f"two workers: {results['two_workers']}")
            for w in pair:
                w.stop()

    if "restart" not in skip:  # its own broker: the sizes above would blur what it measures
        results["restart_scale"] = run_json(
            [
                sys.executable,
                "-m",
                "bench.restart_scale",
                "--customers",
                sizes["restart_customers"],
            ],
            1800,
        )
        log(f"restart at scale: {results['restart_scale']}")
    if "state" not in skip:
        results["state_1m"] = run_json(
            [sys.executable, "-m", "bench.state_size", "--customers", "1000000"]
            + (["--sample", "5000"] if mode == "quick" else []),
            300,
        )
        log(f"state 1M: {results['state_1m']}")
    if "replay" not in skip:
        results["replay"] = run_json(
            [
                sys.executable,
                "bench/replay_bench.py",
                "--events",
                str(sizes["replay"]),
                "--long-events",
                str(sizes["replay_long"]),
            ],
            900,
        )
        log(f"replay: {results['replay']}")
    results["wall_s"] = round(time.monotonic() - begun, 1)
    write(results)
    return 0


def eps(results: dict, key: str) -> int | None:
    r = results.get(key)
    return r.get("eps") if r else None


def write(results: dict) -> None:
    ceiling = eps(results, "ceiling")
    engine = eps(results, "engine")
    lat, tmr = results.get("latency", {}), results.get("timers", {})
    state_1m = results.get("state_1m") or {}
    summary = {
        "engine_eps": engine,
        "ceiling_eps": ceiling,
        "ceiling_getmany_eps": eps(results, "ceiling-getmany"),
        "faust_stateless_eps": eps(results, "faust"),
        "faust_defaults_eps": eps(results, "faust-defaults"),
        "quix_eps": eps(results, "quix"),
        "two_workers_eps": eps(results, "two_workers"),
        "decision_latency_ms": {k: lat.get(k) for k in ("p50", "p99", "p999")},
        "decision_latency_engine_ms": {"p50": lat.get("engine_p50"), "p99": lat.get("engine_p99")},
        "decision_latency_burst_ms": {
            k: results.get("latency_burst", {}).get(k) for k in ("p50", "p99", "p999")
        },
        "offered_eps": lat.get("offered_eps"),
        "timer_lateness_ms": {k: tmr.get(k) for k in ("p50", "p99")},
        "timers_pending": tmr.get("pending_peak"),
        "state_bytes_per_customer": results.get("state", {}).get("bytes_per_customer"),
        "state_customers": results.get("state", {}).get("customers"),
        "rss_mb": results.get("rss_mb"),
        "rss_mb_1m": state_1m.get("rss_mb"),
        "state_bytes_per_customer_1m": state_1m.get("bytes_per_customer"),
        "recovery_s": results.get("recovery_s"),
        "recovery_rocksdb_s": results.get("recovery_rocksdb_s"),
        "replay_eps": (results.get("replay") or {}).get("replay_eps"),
        "replay_long_history_eps": (results.get("replay") or {}).get("replay_long_history_eps"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.processor() or cpu_model()}, "
        f"Python {platform.python_version()}",
        "mode": results["mode"],
        "details": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(summary)
    (RESULTS / "latest.md").write_text(table)
    print(table)
    print(json.dumps({k: v for k, v in summary.items() if k != "details"}))


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown cpu"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1%}" if a and b else "n/a"


def _burst(s: dict) -> str:
    b = s.get("decision_latency_burst_ms") or {}
    return " / ".join(str(b.get(k)) for k in ("p50", "p99", "p999"))


def _cpu(phase: dict | None) -> str:
    c = (phase or {}).get("cpu_cores") or {}
    return " / ".join(str(c.get(k, "n/a")) for k in ("broker", "worker", "bench"))


def markdown(s: dict) -> str:
    d = s["details"]
    engine, ceiling = s["engine_eps"], s["ceiling_eps"]
    lat, tmr = s["decision_latency_ms"], s["timer_lateness_ms"]
    rows = [
        ("ceiling: bare aiokafka `async for` + orjson + dict", _fmt(ceiling), "100%"),
        (
            "ceiling, `getmany()` batches",
            _fmt(s["ceiling_getmany_eps"]),
            _ratio(s["ceiling_getmany_eps"], ceiling),
        ),
        (
            "Faust stateless agent (our create_app), decode only",
            _fmt(s["faust_stateless_eps"]),
            _ratio(s["faust_stateless_eps"], ceiling),
        ),
        (
            "Faust stateless agent, plain Faust defaults",
            _fmt(s["faust_defaults_eps"]),
            _ratio(s["faust_defaults_eps"], ceiling),
        ),
        (
            "Quix Streams 3.28, RocksDB state per customer",
            _fmt(s["quix_eps"]),
            _ratio(s["quix_eps"], ceiling),
        ),
        ("**kairos worker, all triggers on (1 process)**", _fmt(engine), _ratio(engine, ceiling)),
        (
            "kairos, 2 worker processes, one group",
            _fmt(s["two_workers_eps"]),
            _ratio(s["two_workers_eps"], engine) + " of 1 worker"
            if s["two_workers_eps"]
            else "n/a",
        ),
    ]
    out = [
        f"Kairos benchmark ({s['mode']}), {s['date']}, {s['machine']}, Tansu broker on loopback; "
        f"backlog {d.get('backlog_records', 0):,} records, 100,000 simulated customers.",
        "",
        "| throughput (sustained, per process) | events/s | vs ceiling |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"engine / stateless Faust: {_ratio(engine, s['faust_stateless_eps'])}; "
        f"engine / Quix: {_ratio(engine, s['quix_eps'])}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| decision latency at {s['offered_eps']:,} ev/s offered, event ts -> action read (p50 / p99 / p99.9) "
        f"| {lat['p50']} / {lat['p99']} / {lat['p999']} ms |",
        f"| ...inside the engine (decided_at - ts, p50 / p99) | {s['decision_latency_engine_ms']['p50']} / "
        f"{s['decision_latency_engine_ms']['p99']} ms |",
        f"| ...while 20,000 deadlines fall due at once mid-phase (p50 / p99 / p99.9) | "
        f"{_burst(s)} ms |",
        f"| CPU in cores during the two latency phases: broker / worker / bench's producer and "
        f"reader | {_cpu(d.get('latency'))}; with the burst {_cpu(d.get('latency_burst'))} |",
        f"| timer lateness, {d.get('timers', {}).get('timers', 0):,} carts due over 20 s (p50 / p99) "
        f"| {tmr['p50']} / {tmr['p99']} ms (loaded "
        f"{d.get('timers', {}).get('loaded_before_due_s')} s before the first was due) |",
        f"| state per customer (encoded, changelog; {s['state_customers'] or 0:,} customers) | {s['state_bytes_per_customer']} B |",
        f"| worker RSS after all phases ({(s['state_customers'] or 0):,} customers) | {s['rss_mb']} MB |",
        f"| RSS at 1,000,000 customers (in-process store, see FINDINGS) | {s['rss_mb_1m']} MB |",
        f"| restart after kill -9 -> /ready, memory store (reads the whole changelog) | {s['recovery_s']} s |",
        f"| restart after kill -9 -> /ready, rocksdb:// (reads the tail) | {s.get('recovery_rocksdb_s')} s |",
        *_restart_rows(d.get("restart_scale") or {}),
        *_replay_rows(d.get("replay") or {}),
        "",
        f"Command: `python -m bench.run --{s['mode']}` ({d['wall_s']} s).",
    ]
    for note in d.get("notes", []):
        out.append(f"Note: {note}")
    return "\n".join(out) + "\n"


def _restart_rows(restart: dict) -> list[str]:
    return [
        f"| restart after kill -9 -> /ready, rocksdb://, {r['customers']:,} customers with a "
        f"pending deadline each (re-armed: {r['timers_pending_after']:,}) | "
        f"{r['restart_to_ready_s']} s |"
        for r in restart.get("restart", [])
    ]


def _replay_rows(replay: dict) -> list[str]:
    """One row per replay workload: N processes, 1 process, and the JSON-parse floor."""
    rows = []
    for name, w in (replay.get("workloads") or {}).items():
        rows.append(
            f"| replay, {name} ({w['events']:,} events): {w['jobs']} processes / 1 process "
            f"(baseline: orjson.loads alone, 1 process) | {_fmt(w['replay_eps'])} / "
            f"{_fmt(w['replay_eps_1'])} ev/s ({_fmt(w['parse_lps'])} lines/s)"
            + (
                f"; decisions sha256 `{w['decisions_sha256'][:12]}`"
                if "decisions_sha256" in w
                else ""
            )
            + " |"
        )
    return rows


def _fmt(v: float | None) -> str:
    return f"{v:,}" if v else "n/a"


if __name__ == "__main__":
    sys.exit(main())
