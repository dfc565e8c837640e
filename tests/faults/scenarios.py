"""The fault scenarios, each a function of its scale (customers, seconds of traffic).

Fault times are fractions of the traffic's duration (plus fixed outage lengths), so a
scenario keeps its shape when scaled down for ``make test`` or up for ``make soak``.
``ALL`` maps each name to its function; ``SHORT`` and ``FULL`` are the two scales used.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from .campaign import Campaign
from .harness import Harness, Setup
from .traffic import Burst, TrafficSpec

Step = Callable[[Harness], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fault:
    at_s: float  # seconds after the first record's time
    what: str
    do: Step
    kills_dispatcher: bool = False  # sends on the wire may be sent again (at-least-once)


@dataclass(frozen=True, slots=True)
class Scale:
    customers: int
    duration_s: float

    def at(self, share: float) -> float:
        return round(self.duration_s * share, 1)


SHORT = Scale(300, 20)
FULL = Scale(1500, 45)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    traffic: TrafficSpec
    setup: Setup = field(default_factory=Setup)
    faults: tuple[Fault, ...] = ()


# --- fault steps ------------------------------------------------------------------------


def kill_worker(index: int) -> Step:
    async def step(h: Harness) -> None:
        await h.kill_worker(index)

    return step


def start_worker(index: int | None = None) -> Step:
    async def step(h: Harness) -> None:
        await h.start_worker(index, wait=False)

    return step


def stop_worker(index: int) -> Step:
    async def step(h: Harness) -> None:
        await h.kill_worker(index, signal.SIGTERM)

    return step


async def kill_dispatcher(h: Harness) -> None:
    await h.kill_dispatcher()


async def start_dispatcher(h: Harness) -> None:
    assert h.dispatcher is not None
    h.dispatcher.start()


async def stop_redis(h: Harness) -> None:
    await h.stop_redis()


async def start_redis(h: Harness) -> None:
    await h.start_redis()


def cut_broker(seconds: float) -> Step:
    async def step(h: Harness) -> None:
        await h.proxy.cut(seconds)

    return step


# --- the scenarios ----------------------------------------------------------------------


def _traffic(scale: Scale, **kw: object) -> TrafficSpec:
    return replace(TrafficSpec(scale.customers, scale.duration_s), **kw)  # type: ignore[arg-type]


def baseline(scale: Scale) -> Scenario:
    """(a) 2 workers and a dispatcher, no faults: the reference every other run is held to."""
    return Scenario("baseline", "no faults", _traffic(scale))


def worker_kill(scale: Scale) -> Scenario:
    """(b) kill -9 of one of two workers; restarted 10 s later."""
    kill = scale.at(0.3)
    return Scenario(
        "worker_kill",
        "kill -9 one of 2 workers, restart 10 s later",
        _traffic(scale),
        faults=(
            Fault(kill, "kill -9 worker-1", kill_worker(1)),
            Fault(kill + 10, "restart worker-1", start_worker(1)),
        ),
    )


def worker_restart_timers(scale: Scale) -> Scenario:
    """(c) the only worker killed with cart deadlines pending; they come due while it is
    down, and the restarted worker must fire each once."""
    kill = scale.at(0.5)
    return Scenario(
        "worker_restart_timers",
        "kill -9 the only worker with pending deadlines, restart 10 s later",
        _traffic(scale),
        Setup(workers=1, campaign=Campaign(cart_delay_s=8, reminder_delay_s=4)),
        faults=(
            Fault(kill, "kill -9 worker-0", kill_worker(0)),
            Fault(kill + 10, "restart worker-0", start_worker(0)),
        ),
    )


def dispatcher_kill(scale: Scale) -> Scenario:
    """(d) kill -9 of the dispatcher in the middle of a burst, with a 100 ms receiver."""
    burst = scale.at(0.35)
    return Scenario(
        "dispatcher_kill",
        "kill -9 the dispatcher mid-burst (100 ms receiver), restart 5 s later",
        _traffic(scale, burst=Burst(burst, 3.0, factor=15)),
        Setup(receiver_delay_s=0.1),
        faults=(
            Fault(burst + 2, "kill -9 dispatcher", kill_dispatcher, kills_dispatcher=True),
            Fault(burst + 7, "restart dispatcher", start_dispatcher),
        ),
    )


def scale_out_in(scale: Scale) -> Scenario:
    """(e) a second worker joins a running group, then leaves it (SIGTERM)."""
    return Scenario(
        "scale_out_in",
        "a worker added to a running group, later removed",
        _traffic(scale),
        Setup(workers=1),
        faults=(
            Fault(scale.at(0.25), "add worker-1", start_worker(None)),
            Fault(scale.at(0.7), "SIGTERM worker-1", stop_worker(1)),
        ),
    )


def redis_outage(scale: Scale, outage_s: float = 20) -> Scenario:
    """(f) Redis stopped for ``outage_s`` and started again with its data (AOF)."""
    stop = scale.at(0.25)
    return Scenario(
        "redis_outage",
        f"Redis stopped for {outage_s:g} s, restarted with its data",
        _traffic(scale),
        faults=(
            Fault(stop, "stop redis", stop_redis),
            Fault(stop + outage_s, "start redis", start_redis),
        ),
    )


def broker_cut(scale: Scale, outage_s: float = 20) -> Scenario:
    """(g) every Kairos connection to the broker cut, and refused, for ``outage_s``."""
    return Scenario(
        "broker_cut",
        f"broker connections cut for {outage_s:g} s (proxy)",
        _traffic(scale),
        faults=(Fault(scale.at(0.25), f"cut the broker for {outage_s:g} s", cut_broker(outage_s)),),
    )


def poison(scale: Scale) -> Scenario:
    """(h) poison records and malformed lines on every input topic."""
    return Scenario(
        "poison",
        "poison records and 5% malformed lines on every input topic",
        _traffic(scale, poison=True, malformed_share=0.05),
    )


def burst(scale: Scale) -> Scenario:
    """(i) 10x the normal rate for a fifth of the run."""
    return Scenario(
        "burst",
        "10x the normal rate for a fifth of the run",
        _traffic(scale, burst=Burst(scale.at(0.3), scale.duration_s / 5, factor=10)),
    )


def combined(scale: Scale) -> Scenario:
    """(j) issue 11's run: 2 workers + dispatcher; at 20/60 of the run kill -9 a worker
    (restart at 30/60), at 40/60 kill -9 the dispatcher (restart at 45/60). The receiver
    answers in 50 ms, a provider's usual latency, so the dispatcher has sends on the wire
    when it dies."""
    return Scenario(
        "combined",
        "kill -9 a worker (restart 10 s later), then the dispatcher (restart 5 s later)",
        _traffic(scale),
        Setup(receiver_delay_s=0.05),
        faults=(
            Fault(scale.at(20 / 60), "kill -9 worker-1", kill_worker(1)),
            Fault(scale.at(30 / 60), "restart worker-1", start_worker(1)),
            Fault(scale.at(40 / 60), "kill -9 dispatcher", kill_dispatcher, kills_dispatcher=True),
            Fault(scale.at(45 / 60), "restart dispatcher", start_dispatcher),
        ),
    )


ALL: dict[str, Callable[[Scale], Scenario]] = {
    "baseline": baseline,
    "worker_kill": worker_kill,
    "worker_restart_timers": worker_restart_timers,
    "dispatcher_kill": dispatcher_kill,
    "scale_out_in": scale_out_in,
    "redis_outage": redis_outage,
    "broker_cut": broker_cut,
    "poison": poison,
    "burst": burst,
    "combined": combined,
}
COMBINED_SCALE = Scale(3000, 60)  # the numbers
