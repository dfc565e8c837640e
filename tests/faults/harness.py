"""One fault run's world: broker behind a proxy, Redis, workers, a dispatcher, a receiver.

    async with Harness("worker_kill", Setup(workers=2)) as h:
        ...                       # publish traffic, then:
        h.kill_worker(0)          # kill -9
        await h.start_worker(0)   # same settings, same metrics port

Every Kairos process reaches the broker through ``h.proxy`` (see ``proxy.py``); Redis
is reached directly and is stopped and started for its own faults. Logs, the config,
the traffic file and Redis's append-only file are kept under
``var/faults/logs/<name>/`` for diagnosis (replaced by the next run of that name).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from kairos.launcher import create_topics
from stream import topics

from .campaign import Campaign
from .observer import Observer
from .proxy import FaultProxy
from .receiver import WebhookReceiver
from .services import ROOT, Broker, KairosProcess, Redis, wait_until

VAR = ROOT / "var" / "faults"
APP_ID = "faults"
SECRET = "faults-webhook-secret"
TERMINAL_OUTCOMES = frozenset(
    {
        "delivered",
        "failed",
        "dead",
        "disabled",
        "suppressed_consent",
        "suppressed_priority",
        "suppressed_frequency_cap",
    }
)
# Short delivery retries: a run must not wait minutes on a provider's backoff.
DELIVERY_ENV = {
    "KAIROS_DELIVERY_MAX_ATTEMPTS": "3",
    "KAIROS_DELIVERY_BASE_DELAY": "0.2",
    "KAIROS_DELIVERY_MAX_DELAY": "1",
    "KAIROS_DELIVERY_TIMEOUT": "3",
}


@dataclass(frozen=True, slots=True)
class Setup:
    workers: int = 2
    dispatcher: bool = True
    receiver_delay_s: float = 0.0
    partitions: int = 4
    campaign: Campaign = field(default_factory=Campaign)


def spared(client_id: str) -> bool:
    """The test's own Kafka clients (publisher, observer): the proxy never faults them."""
    return client_id.startswith("faults-")


class Harness:
    def __init__(self, name: str, setup: Setup, root: Path = VAR, code_dir: Path = ROOT) -> None:
        self.name = name
        self.setup = setup
        self.code_dir = code_dir
        self.dir = root / "logs" / name
        self.proxy = FaultProxy(("127.0.0.1", 0), spare=spared)
        self.broker: Broker | None = None
        self.redis: Redis | None = None
        self.receiver = WebhookReceiver(SECRET, delay_s=setup.receiver_delay_s)
        self.observer: Observer | None = None
        self.workers: list[KairosProcess] = []
        self.dispatcher: KairosProcess | None = None
        self.config_path = self.dir / "triggers.yaml"

    # --- addresses --------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Through the proxy: the only address the broker advertises."""
        return self.proxy.address

    def kairos_env(self) -> dict[str, str]:
        assert self.redis is not None
        return {
            "BROKER_URL": f"kafka://{self.bootstrap}",
            "REDIS_URL": self.redis.url,
            "KAIROS_APP_ID": APP_ID,
            "KAIROS_PARTITIONS": str(self.setup.partitions),
            "KAIROS_CONFIG": str(self.config_path),
            "KAIROS_DATA_DIR": str(self.dir / "data"),
            "KAIROS_LOG_LEVEL": "info",
            "KAIROS_WEBHOOK_URL": self.receiver.url,
            "KAIROS_WEBHOOK_SECRET": SECRET,
            **DELIVERY_ENV,
        }

    # --- start and stop -----------------------------------------------------------------
    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _start(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.config_path.write_text(self.setup.campaign.yaml())
        self.broker = Broker(self.dir, advertised_port=self.proxy.port)
        self.proxy.upstream = ("127.0.0.1", self.broker.port)
        self.broker.start()
        self.redis = Redis(self.dir, self.dir / "redis-data")
        self.redis.start()
        await asyncio.gather(self.broker.ready(), self.redis.ready())
        await self.proxy.start()
        # Before any client asks: Tansu auto-creates unknown topics with 4 partitions.
        partitions = self.setup.partitions
        others = [t for t in topics.ALL if t != topics.PROFILES]
        await create_topics(self.bootstrap, others, partitions)
        await create_topics(
            self.bootstrap, [topics.PROFILES], partitions, config={"cleanup.policy": "compact"}
        )
        await self.receiver.start()
        self.observer = Observer(self.bootstrap)
        await self.observer.start()
        env = self.kairos_env()
        self.workers = [
            KairosProcess("worker", f"worker-{i}", self.dir, env, self.code_dir)
            for i in range(self.setup.workers)
        ]
        if self.setup.dispatcher:
            self.dispatcher = KairosProcess(
                "dispatcher", "dispatcher", self.dir, env, self.code_dir
            )
        started = [*self.workers, *([self.dispatcher] if self.dispatcher else [])]
        for process in started:
            process.start()
        await asyncio.gather(*(p.ready() for p in started))
        await self.wait_group_stable()

    async def close(self) -> None:
        """Stop everything; safe to call twice and after a failed start."""
        for process in [*self.workers, self.dispatcher]:
            if process is not None:
                await process.kill(signal.SIGKILL, timeout=5)
        if self.observer is not None:
            await self.observer.close()
        await self.receiver.close()
        await self.proxy.close()
        for service in (self.redis, self.broker):
            if service is not None:
                await service.stop(timeout=5)

    async def wait_group_stable(self, timeout: float = 60.0) -> None:
        """Every input partition owned by exactly one running worker (as their metrics say)."""
        from .metrics import owned_partitions

        async def stable() -> bool:
            running = [w for w in self.workers if w.running]
            owners = [await owned_partitions(w.metrics_port) for w in running]
            claimed = [p for owned in owners for p in owned]
            return sorted(claimed) == list(range(self.setup.partitions))

        await wait_until(stable, timeout=timeout, what="a stable worker group")

    # --- faults -------------------------------------------------------------------------
    async def kill_worker(self, index: int, sig: int = signal.SIGKILL) -> None:
        await self.workers[index].kill(sig)

    async def start_worker(self, index: int | None = None, *, wait: bool = True) -> int:
        """Start worker ``index`` again, or a new one when ``index`` is None; returns its index."""
        if index is None:
            index = len(self.workers)
            self.workers.append(
                KairosProcess(
                    "worker", f"worker-{index}", self.dir, self.kairos_env(), self.code_dir
                )
            )
        self.workers[index].start()
        if wait:
            await self.workers[index].ready()
        return index

    async def kill_dispatcher(self, sig: int = signal.SIGKILL) -> None:
        assert self.dispatcher is not None
        await self.dispatcher.kill(sig)

    async def start_dispatcher(self) -> None:
        assert self.dispatcher is not None
        self.dispatcher.start()
        await self.dispatcher.ready()

    async def stop_redis(self) -> None:
        assert self.redis is not None
        await self.redis.stop()

    async def start_redis(self) -> None:
        assert self.redis is not None
        self.redis.start()
        await self.redis.ready()

    def unexpected_exits(self) -> dict[str, list[int]]:
        """Return codes of Kairos processes that exited without the harness asking."""
        out: dict[str, list[int]] = {}
        for process in [*self.workers, self.dispatcher]:
            if process is not None:
                process.poll()
                if process.crashes:
                    out[process.name] = list(process.crashes)
        return out

    # --- waiting for the end ------------------------------------------------------------
    async def settle(self, expected_sends: set[str], not_before_ms: int, timeout_s: float) -> float:
        """Wait until the run has nothing left to do; returns the seconds waited.

        Done when the wall clock is past ``not_before_ms`` (every deadline due), every
        expected send has arrived, and every ``send`` on ``actions`` has a final outcome
        on ``deliveries``; then 3 s more, for duplicates. Gives up after ``timeout_s``
        (losses are then reported, not waited for).
        """
        assert self.observer is not None
        outputs = self.observer.outputs
        started = time.monotonic()

        async def done() -> bool:
            if time.time() * 1000 < not_before_ms:
                return False
            arrived = self.receiver.arrivals.counts()
            if not expected_sends <= arrived.keys():
                return False
            sends = {a["action_id"] for a in outputs.actions if a.get("status") == "send"}
            final = {
                d["action_id"] for d in outputs.deliveries if d["outcome"] in TERMINAL_OUTCOMES
            }
            return sends <= final

        with contextlib.suppress(TimeoutError):  # what is missing then is counted as lost
            await wait_until(done, timeout=timeout_s, what="the run to settle")
        await asyncio.sleep(3)
        return time.monotonic() - started
