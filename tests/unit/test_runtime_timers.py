"""The live worker's timers around a burst (``agents/runtime.py``), without a broker.

A customer's own due deadline fires before their next event is applied, as in
replay; everyone else's due deadlines are not fired in line with that event (a
burst of 20,000 used to stall the partition's events for hundreds of ms) but by
``fire_due``, in paced slices, up to the event time a partition that is catching
up has reached.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from test_driver import DELAY, carts_only  # the driver's tests: one cart trigger, its delay

from agents.runtime import Runtime
from bench.state_size import MemoryTable
from core.durations import MINUTE
from state.store import CustomerStore
from stream import topics
from stream.output import Lane, Output
from stream.pacing import Pacer


class _Recorded(Output):
    """A real, never started Output that also keeps what was added (nothing is sent)."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:9")
        self.actions: list[str] = []

    def add(
        self, topic: str, partition: int | None, key: str | None, value: Any, lane: Lane = 0
    ) -> None:
        super().add(topic, partition, key, value, lane)
        if topic == topics.ACTIONS:
            self.actions.append(f"{value['customer_id']}:{value['trigger']}")


def catching_up_runtime() -> tuple[Runtime, _Recorded]:
    output = _Recorded()
    runtime = Runtime(carts_only(), CustomerStore(MemoryTable(), output, "changelog", 1000), output)
    runtime.rebuild({0})
    # The broker holds more input than was handled: partition 0 is catching up.
    runtime.input_positions = lambda p: [(topics.CLICKSTREAM, 0, 10**9)]
    return runtime, output


def send(runtime: Runtime, offset: int, etype: str, cid: str, ts: int, **fields: Any) -> None:
    record = {"event_id": f"e{offset}", "type": etype, "customer_id": cid, "ts": ts, **fields}
    runtime.handle(topics.CLICKSTREAM, 0, offset, cid.encode(), orjson.dumps(record))


def test_an_event_fires_its_own_customers_deadline_first_and_nobody_elses() -> None:
    runtime, output = catching_up_runtime()
    t0 = int(time.time() * 1000) - 6 * 60 * MINUTE  # hours of backlog: all due by the wall
    for i, cid in enumerate(["a", *(f"b{n}" for n in range(200))]):
        send(runtime, i, "add_to_cart", cid, t0 + i, product_id="p1", price=20.0)
    assert asyncio.run(runtime.fire_due()) == 0  # the backlog's event time is before every due

    send(runtime, 500, "page_view", "a", t0 + DELAY + 10 * MINUTE, url="/")
    assert output.actions == ["a:abandoned_cart"]  # a's, before a's page view; no one else's

    assert asyncio.run(runtime.fire_due()) == 200  # event time passed theirs: paced slices
    assert output.actions[0] == "a:abandoned_cart"
    assert sorted(output.actions[1:]) == sorted(f"b{n}:abandoned_cart" for n in range(200))
    assert asyncio.run(runtime.fire_due()) == 0  # nothing fires twice


def test_a_caught_up_partition_fires_on_the_wall_clock() -> None:
    runtime, output = catching_up_runtime()
    t0 = int(time.time() * 1000) - 2 * DELAY
    send(runtime, 0, "add_to_cart", "a", t0, product_id="p1", price=20.0)
    runtime.input_positions = lambda p: [(topics.CLICKSTREAM, 0, 1)]  # all handled
    assert asyncio.run(runtime.fire_due()) == 1
    assert output.actions == ["a:abandoned_cart"]


def test_the_pacer_takes_turns_within_its_budget_and_pauses_after_it() -> None:
    async def steps() -> list[float]:
        pacer = Pacer(budget_s=0.5, pause_s=0.2)
        took = []
        for _ in range(3):
            started = time.perf_counter()
            await pacer.step()
            took.append(time.perf_counter() - started)
        time.sleep(0.55)  # background work that used the budget up
        started = time.perf_counter()
        await pacer.step()
        took.append(time.perf_counter() - started)
        return took

    first, within, within_too, after = asyncio.run(steps())
    assert first >= 0.2  # a budget starts with a pause: work before it ran unmeasured
    assert within < 0.1 and within_too < 0.1
    assert after >= 0.2
