"""``kairos worker``: one Faust worker process running the customer agent."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from typing import Any

import faust
import redis.asyncio as aioredis

from agents.customers import declare_table, install
from agents.products import Products
from agents.products import install as install_products
from agents.runtime import Runtime
from core.config import Config
from core.config_file import load_config
from monitoring import http, metrics
from monitoring.lag import update_consumer_lag
from state.store import CustomerStore
from stream import topics
from stream.app import create_app
from stream.output import Output
from stream.security import kafka_client_kwargs, redis_kwargs
from stream.settings import Settings

log = logging.getLogger(__name__)


def load_campaign_config(path: str) -> Config:
    """The config file if it exists; the documented defaults otherwise."""
    return load_config(path) if os.path.exists(path) else Config()


async def ensure_topics(settings: Settings) -> None:
    """Create the contract's topics if missing (Faust creates its own changelog topics)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, **kafka_client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                settings.partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if name in topics.COMPACTED else {},
            )
            for name in topics.ALL
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


def build(settings: Settings, cfg: Config) -> tuple[faust.App, Runtime]:
    metrics.start_error_series()
    app = create_app(settings)
    table = declare_table(app)
    # Two producers: actions must not queue behind a flush's megabytes of state.
    kafka = kafka_client_kwargs()  # KAIROS_KAFKA_*: SASL / TLS
    # Two lanes for outputs: decisions on fresh events never queue behind a deadline burst's.
    output = Output(
        settings.bootstrap, client_id=f"{settings.app_id}-worker", lanes=2, client_kwargs=kafka
    )
    # A state write that failed is not sent again as it was: its customers are encoded anew.
    state_output = Output(
        settings.bootstrap,
        client_id=f"{settings.app_id}-state",
        requeue_failed=False,
        client_kwargs=kafka,
    )
    store = CustomerStore(
        table, state_output, table.changelog_topic.get_topic_name(), settings.state_cache
    )
    runtime = Runtime(cfg, store, output, settings.partitions)
    install(app, runtime, table)
    # The product agent and every worker's view of related products (core.recommend).
    products = Products(lambda: runtime.cfg, output, settings.partitions)
    install_products(app, products, runtime.before_flush)
    redis = aioredis.from_url(settings.redis_url, **redis_kwargs(settings.redis_url))

    # Live config: file + Redis overrides now, then followed (see state/config_watcher.py).
    from state.config_watcher import ConfigWatcher

    def use(new: Config) -> None:
        runtime.cfg = new  # atomic for the next event or timer

    watcher = ConfigWatcher(settings.config_path, settings.redis_url, redis, use)
    watcher.load_initial(cfg)

    @app.task
    async def follow_config() -> None:
        await watcher.run()

    @app.timer(2.0, name="report_consumer_lag")
    async def report_consumer_lag() -> None:
        await update_consumer_lag(app)

    async def ready() -> tuple[bool, dict[str, str]]:
        checks = {"partitions": "recovered" if runtime.recovered else "recovering"}
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # readiness reports any failure as a reason
            checks["redis"] = f"unreachable: {exc}"
        return runtime.recovered and checks["redis"] == "ok", checks

    if settings.metrics_port:

        @app.task
        async def serve_metrics() -> None:
            await http.serve(settings.metrics_port, ready, host=settings.metrics_host)
            log.warning(
                "metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port
            )

    return app, runtime


def run(settings: Settings | None = None, cfg: Config | None = None) -> Any:
    # Customer states are long-lived and numerous: with the default gen-0 threshold (700)
    # the collector keeps re-walking them. Collect young objects 70x less often.
    gc.set_threshold(50_000, 20, 20)
    settings = settings or Settings()
    cfg = cfg or load_campaign_config(settings.config_path)
    asyncio.run(ensure_topics(settings))
    app, _ = build(settings, cfg)
    return execute(app, settings)


def execute(app: faust.App, settings: Settings) -> Any:
    """Run a Faust worker for ``app`` until a signal; prints stay prints (the console channel)."""
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    if not sys.stdout.isatty():
        worker.spinner = None  # its cursor escape codes would land in log files
    return worker.execute_from_commandline()
