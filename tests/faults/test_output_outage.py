"""``stream/output.py`` while the broker is out of reach: records the producer refuses
are kept, in order, and sent once it is back. Nothing lost, nothing sent twice, counted.

(In the fault soak a timer's actions vanished this way: a send refused for lack of
metadata dropped every record taken for that round.)
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from stream.output import Output, OutputError

from .proxy import FaultProxy
from .services import Broker

pytestmark = pytest.mark.integration


async def read_all(bootstrap: str, topics: list[str], expect: int) -> list[tuple[str, bytes]]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        client_id="faults-observer",  # spared by the proxy
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[str, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(got) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                got.extend((tp.topic, r.value or b"") for r in records)
        await asyncio.sleep(0.5)  # would more come?
        for tp, records in (await consumer.getmany(timeout_ms=500)).items():
            got.extend((tp.topic, r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return got


async def test_records_refused_while_the_broker_is_cut_are_sent_after_it_returns(
    proxied_broker: tuple[Broker, FaultProxy],
) -> None:
    _, proxy = proxied_broker
    run = uuid.uuid4().hex[:6]
    known, fresh = f"known-{run}", f"fresh-{run}"  # fresh: no metadata yet when cut
    output = Output(proxy.address, client_id="kairos-worker", request_timeout_ms=1_500)
    try:
        output.add(known, 0, "k", {"n": 0})
        await output.flush()
        await proxy.cut()
        for n in range(1, 51):  # one round of a drain: some to a topic it knows, some not
            output.add(known, 0, "k", {"n": n})
            output.add(fresh, 0, "k", {"n": n})
        with pytest.raises(OutputError):
            await output.drain()  # refused: the records must stay buffered
        output.add(known, 0, "k", {"n": 51})  # added meanwhile: goes after them
        await proxy.restore()
        for _ in range(20):
            try:
                await output.flush()
                break
            except OutputError:  # not back yet
                await asyncio.sleep(0.5)
        else:
            pytest.fail("the output never got through after restore")
    finally:
        await output.stop()

    got = await read_all(proxy.address, [known, fresh], 103)
    by_topic = {t: [v for topic, v in got if topic == t] for t in (known, fresh)}
    numbers = {t: [int(v.split(b":")[1].rstrip(b"}")) for v in vs] for t, vs in by_topic.items()}
    # All, once. (Not necessarily in order: a batch the broker failed to acknowledge after
    # later ones were handed over is sent again after them; with the worker's 120 s
    # request timeout, aiokafka's own retries ride out cuts shorter than that in order.)
    assert sorted(numbers[known]) == list(range(52))
    assert sorted(numbers[fresh]) == list(range(1, 51))
