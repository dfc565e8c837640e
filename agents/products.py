"""The product agent: related products learned per product, read on every worker.

Recommendations are keyed by product, customers by customer, so they live apart
(``core.recommend`` has the method):

1. **Repartition.** The customer agent's learning hook turns a customer's events into
   observations ``(key, item, log-weight)`` (a product, or ``#<category>``) and this
   module buffers them on ``product-pairs``, keyed and partitioned by ``key``. They are
   outputs like actions: acknowledged at a checkpoint before the customer's state and
   before the input offsets (``agents/checkpoint.py``).
2. **The product agent** is a Faust agent over ``product-pairs``: the worker that owns a
   key's partition applies its observations to the key's sketch and marks it dirty.
3. **Publish.** Right before each checkpoint's cut, every dirty key's sketch goes to
   ``recommendations`` (compacted, keyed by key), so the sketch is acknowledged before
   the offsets of the observations it holds are committed. A crash in between re-applies
   those observations: counts are at least once (a decayed statistic: a little extra
   weight for a few seconds' traffic, no lost update).
4. **Read everywhere.** Each worker reads all of ``recommendations`` from the beginning
   with its own consumer (no group) into its model, which the core's ``recommend``
   reads: every worker sees every product's sketch, whoever owns it. A key this worker
   updated since it got the key's partition is not overwritten by its echo (its own
   copy is newer); until then, the published copy is loaded, which is how a restarted
   or new owner continues a product's counts.

Why not Faust's ``GlobalTable``: reported to miss updates on some workers
(robinhood/faust#716, #541) and to drop standby events read after recovery
(faust-streaming/faust#212); and its changelog records would come through the
drain loop's table-recovery path that stream/app.py leaves to Faust. A plain
compacted topic read by a plain consumer is what a GlobalTable is underneath.
Known gap: after a rebalance the new owner starts a key from the copy its reader
has, which lags the old owner's last publish by the reader's delay (~0.1-1 s):
observations applied in that gap by the old owner can be lost. Bounded, decayed,
and documented in the README.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from core import recommend
from core.config import Config
from core.recommend import Model, Observation
from stream import topics
from stream.app import KairosApp
from stream.output import Output, partition_for

log = logging.getLogger(__name__)


class Products:
    """One worker's product side: the learner hook's sink, the agent's state, the reader's view."""

    def __init__(self, cfg: Callable[[], Config], output: Output, partitions: int) -> None:
        self._cfg = cfg
        self.output = output
        self.partitions = partitions
        self.model = Model(cfg().recommend)
        self.owned: set[int] = set()  # partitions of product-pairs assigned here
        self.local: set[str] = set()  # keys updated here since their partition was assigned
        self.dirty: set[str] = set()
        self.applied = 0  # observations applied here (tests and logs)
        self.loaded = 0  # sketches read from other workers

    # --- customer side ----------------------------------------------------------------
    def send(self, observations: list[Observation]) -> None:
        """The core's learner: observations to the owner of their key."""
        add, n = self.output.add, self.partitions
        for key, item, logw in observations:
            add(topics.PRODUCT_PAIRS, partition_for(key, n), key, {"i": item, "w": logw})

    # --- the product agent ------------------------------------------------------------
    def on_record(self, key: bytes | None, value: bytes | None) -> None:
        try:
            record = orjson.loads(value or b"null")
            item, logw = str(record["i"]), float(record["w"])
            name = (key or b"").decode()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError):
            log.warning("unusable product-pairs record skipped")
            return
        self.model.cfg = self._cfg().recommend  # a live config change resizes from here on
        self.model.apply(name, item, logw)
        self.dirty.add(name)
        self.local.add(name)
        self.applied += 1

    def publish(self) -> None:
        """Buffer every dirty key's sketch for ``recommendations`` (before a checkpoint's cut)."""
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for key in dirty:
            sketch = self.model.sketch(key)
            self.output.add(
                topics.RECOMMENDATIONS,
                partition_for(key, self.partitions),
                key,
                {"r": sketch} if sketch is not None else {"r": None},
            )

    def revoked(self, partitions: set[int]) -> None:
        """Their keys are another worker's now: follow its copies again."""
        self.owned -= partitions
        n = self.partitions
        self.local = {k for k in self.local if partition_for(k, n) not in partitions}

    # --- every worker's view ----------------------------------------------------------
    def on_snapshot(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode(errors="replace")
        if name in self.local:
            return  # updated here: the model's copy is at least as new as its echo
        try:
            sketch = orjson.loads(value)["r"] if value is not None else None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        self.model.load(name, sketch if isinstance(sketch, dict) else None)
        self.loaded += 1


def install(app: KairosApp, products: Products, before_flush: list[Callable[[], None]]) -> None:
    """The agent, the reader task and the ownership tracking on ``app``; the core's catalog."""
    settings = app.kairos_settings
    recommend.install(products.model, products.send)
    before_flush.append(products.publish)
    pairs = app.topic(
        topics.PRODUCT_PAIRS,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    @app.agent(pairs, name="products")
    async def product_agent(stream: Any) -> None:
        async for event in stream.events():
            products.on_record(event.key, event.value)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # Faust's stub: too narrow
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        products.owned = {tp.partition for tp in assigned if tp.topic == topics.PRODUCT_PAIRS}

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust's stub: too narrow
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        products.revoked({tp.partition for tp in revoked if tp.topic == topics.PRODUCT_PAIRS})

    @app.task
    async def read_recommendations() -> None:
        await _read(settings.bootstrap, products)


async def _read(bootstrap: str, products: Products) -> None:
    """Follow ``recommendations`` from its beginning, for good (reconnects on failure)."""
    from aiokafka import AIOKafkaConsumer

    from stream.security import kafka_client_kwargs

    while True:
        consumer = AIOKafkaConsumer(
            topics.RECOMMENDATIONS,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            **kafka_client_kwargs(),
        )
        try:
            await consumer.start()
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for m in messages:
                        products.on_snapshot(m.key, m.value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker away: read again from the start later
            log.warning("reading recommendations failed (%s); again in 1 s", exc)
            await asyncio.sleep(1.0)
        finally:
            await consumer.stop()
