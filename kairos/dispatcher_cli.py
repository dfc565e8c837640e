"""``kairos dispatcher``: a Faust worker (app id ``{KAIROS_APP_ID}-dispatcher``) that
delivers ``send`` actions. Settings: ``stream/settings.py`` and ``channels/settings.py``.

Channels are built from the environment (``channels/providers/settings.py``); a channel whose
variables are missing is left out, and its actions get a ``failed`` outcome naming it.
``KAIROS_CHANNEL_OVERRIDE=console`` prints every message instead (the dev demo).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="campaign config file (default: $KAIROS_CONFIG)")
    parser.add_argument(
        "--metrics-port", type=int, help="default: $KAIROS_DISPATCHER_METRICS_PORT or 9101"
    )


def build_channels(override: str) -> list[Any]:
    from channels.providers.settings import FACTORIES, SettingsError, channel_from_env

    if override:
        return [channel_from_env(override)]
    built = []
    for name in FACTORIES:
        try:
            built.append(channel_from_env(name))
        except SettingsError as exc:
            log.info("channel %s not configured: %s", name, exc)
    return built


def build(settings: Any) -> Any:
    import redis.asyncio as aioredis

    from agents.dispatcher import install
    from channels.contacts import ContactBook
    from channels.dispatch import Dispatcher
    from channels.idempotency import DeliveryLedger
    from channels.policy import ContactPolicy
    from channels.resilience import ChannelPool
    from channels.schedule import Schedule
    from channels.settings import (
        REDIS_POOL_WAIT_S,
        DispatchSettings,
        redis_pool_size,
        retry_policy_from_env,
    )
    from kairos.worker import load_campaign_config
    from monitoring import http, metrics
    from monitoring.dispatch_gauges import update_dispatcher_gauges
    from state.config_watcher import ConfigWatcher
    from stream.app import create_app
    from stream.output import Output
    from stream.security import kafka_client_kwargs, redis_kwargs

    metrics.start_error_series(worker=False)
    dsettings = DispatchSettings.from_env()
    app_settings = dataclasses.replace(settings, app_id=f"{settings.app_id}-dispatcher")
    app = create_app(app_settings, instance=f"dispatcher-{dsettings.metrics_port}")
    # Sized to the deliveries in flight, and blocking: a burst waits for a connection.
    redis = aioredis.Redis.from_pool(
        aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=redis_pool_size(dsettings),
            timeout=REDIS_POOL_WAIT_S,
            **redis_kwargs(settings.redis_url),
        )
    )
    retry = retry_policy_from_env()
    pool = ChannelPool(
        build_channels(dsettings.channel_override),
        policy=retry,
        concurrency=dsettings.concurrency,
        failure_threshold=dsettings.circuit_failures,
        cooldown_s=dsettings.circuit_cooldown_s,
    )
    # The same live config as the workers: file + `kairos triggers` overrides, followed.
    watcher = ConfigWatcher(settings.config_path, settings.redis_url, redis, lambda _: None)
    watcher.load_initial(load_campaign_config(settings.config_path))
    contacts = ContactBook(redis)
    dispatcher = Dispatcher(
        config=lambda: watcher.active,
        pool=pool,
        schedule=Schedule(redis, lease_ms=dsettings.lease_ms),
        ledger=DeliveryLedger(redis, lease_ms=dsettings.lease_ms),
        policy=ContactPolicy(redis),
        contacts=contacts,
        output=Output(
            settings.bootstrap, client_id=app_settings.app_id, client_kwargs=kafka_client_kwargs()
        ),
        settings=dsettings,
    )
    install(app, dispatcher, contacts, watcher)

    async def ready() -> tuple[bool, dict[str, str]]:
        checks = {"channels": ", ".join(sorted(pool.channels)) or "none"}
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # readiness reports any failure as a reason
            checks["redis"] = f"unreachable: {exc}"
        return checks["redis"] == "ok", checks

    if dsettings.metrics_port:

        @app.task
        async def serve_metrics() -> None:
            await http.serve(dsettings.metrics_port, ready, host=settings.metrics_host)

    @app.timer(2.0, name="report_dispatcher_gauges")
    async def report_dispatcher_gauges() -> None:  # lag on actions, the Redis queue
        await update_dispatcher_gauges(app, redis)

    return app


def run(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["KAIROS_CONFIG"] = args.config
    if args.metrics_port is not None:
        os.environ["KAIROS_DISPATCHER_METRICS_PORT"] = str(args.metrics_port)
    from kairos.worker_cli import check_startup

    check_startup("dispatcher")  # a missing or unreadable config: one line, no traceback
    from channels.settings import DispatchSettings, DispatchSettingsError, retry_policy_from_env
    from kairos.worker import ensure_topics, execute
    from stream.settings import Settings

    try:
        DispatchSettings.from_env()
        retry_policy_from_env()
    except DispatchSettingsError as exc:
        print(f"kairos dispatcher: {exc}", file=sys.stderr)
        return 2
    settings = Settings()
    asyncio.run(ensure_topics(settings))
    app = build(settings)
    execute(app, settings)
    return 0
