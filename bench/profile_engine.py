"""Profile a ``kairos worker`` draining a backlog: py-spy samples, summed by function.

    python -m bench.profile_engine [--events 80000] [--seconds 12] [--top 40]

Prints the worker's rate, then the functions with the most samples: "self" (on-CPU in
the function itself) and "total" (the function or anything it calls). The raw
collapsed stacks stay in bench/results/profile.txt for a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import traffic
from bench.engine import EngineWorker, consumed
from bench.run import BENCH_CONFIG, PARTITIONS, RESULTS, worker_env
from kairos.launcher import create_topics, start_broker, start_redis
from stream import topics


def summarize(path: Path, top: int) -> None:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"{samples} samples")
    print("--- self ---")
    for frame, n in own.most_common(top):
        print(f"{n / samples:6.1%}  {frame}")
    print("--- total ---")
    for frame, n in total.most_common(top):
        print(f"{n / samples:6.1%}  {frame}")


async def topic_sizes(bootstrap: str) -> dict[str, int]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        names = [t for t in await consumer.topics() if not t.startswith("__")]
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    sizes: Counter[str] = Counter()
    for tp, end in ends.items():
        sizes[tp.topic] += end
    return dict(sizes)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=80_000)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    args = parser.parse_args()
    out = RESULTS / "profile.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(start_broker())
        redis = stack.enter_context(start_redis())
        asyncio.run(create_topics(broker.bootstrap, list(topics.ALL), PARTITIONS))
        records = asyncio.run(
            traffic.produce_fast(
                broker.bootstrap, traffic.backlog(100_000, args.events), PARTITIONS
            )
        )
        config = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "triggers.yaml"
        config.write_text(BENCH_CONFIG)
        env = worker_env(broker.url, redis.url, config, f"prof-{uuid.uuid4().hex[:6]}")
        worker = EngineWorker(env)
        stack.callback(worker.stop, signal.SIGKILL)
        while consumed([worker]) < records * 0.05:
            worker.alive()
            time.sleep(0.2)
        n0, t0 = consumed([worker]), time.monotonic()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(worker.process.pid),
                "--duration",
                str(args.seconds),
            ]
            + ["--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking"]
            + (["--gil"] if args.gil else []),
            check=True,
            capture_output=True,
        )
        n1, t1 = consumed([worker]), time.monotonic()
        print(f"worker under py-spy: {(n1 - n0) / (t1 - t0):,.0f} ev/s ({n1:,.0f}/{records:,})")
        print("records per topic:", asyncio.run(topic_sizes(broker.bootstrap)))
    summarize(out, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
