"""Every environment setting of Kairos, in one place, with its default.

| variable | default | meaning |
|---|---|---|
| ``BROKER_URL`` | ``kafka://127.0.0.1:9092`` | Kafka bootstrap (``kafka://host:port[;host:port]``) |
| ``REDIS_URL`` | ``redis://127.0.0.1:6379/0`` | caps, idempotency keys, live config |
| ``KAIROS_APP_ID`` | ``kairos`` | Faust app id = consumer group and changelog prefix |
| ``KAIROS_STORE`` | ``memory://`` | Faust table store (``rocksdb://`` in production: ``pip install '.[rocksdb]'``) |
| ``KAIROS_DATA_DIR`` | ``var/data`` | where a RocksDB store keeps its files (one folder per app id) |
| ``KAIROS_PARTITIONS`` | ``8`` | partitions of every topic (input topics must match) |
| ``KAIROS_METRICS_PORT`` | ``9100`` | ``/metrics``, ``/health``, ``/ready`` (0 = off) |
| ``KAIROS_CONFIG`` | ``config/triggers.yaml`` | campaign config file |
| ``KAIROS_FETCH_MAX_WAIT_MS`` | ``100`` | broker long-poll wait (Faust hard-codes 1500: the latency floor) |
| ``KAIROS_SESSION_TIMEOUT`` | ``6`` | consumer group session timeout, s (production: 30) |
| ``KAIROS_HEARTBEAT_INTERVAL`` | ``0.5`` | s (production: 3) |
| ``KAIROS_COMMIT_INTERVAL`` | ``1.0`` | offset commit interval, s; state is flushed first |
| ``KAIROS_FLUSH_INTERVAL`` | ``0.5`` | how often dirty customer state goes to the changelog, s |
| ``KAIROS_TIMER_TICK`` | ``0.1`` | how often due timers are popped, s |
| ``KAIROS_OUTPUT_INTERVAL`` | ``0.005`` | how often buffered output records are sent, s |
| ``KAIROS_STATE_CACHE`` | ``200000`` | decoded customer states kept in memory per worker |
| ``KAIROS_LOG_LEVEL`` | ``warning`` | worker log level |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True, slots=True)
class Settings:
    broker_url: str = field(default_factory=lambda: _env("BROKER_URL", "kafka://127.0.0.1:9092"))
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    app_id: str = field(default_factory=lambda: _env("KAIROS_APP_ID", "kairos"))
    store: str = field(default_factory=lambda: _env("KAIROS_STORE", "memory://"))
    data_dir: str = field(default_factory=lambda: _env("KAIROS_DATA_DIR", "var/data"))
    partitions: int = field(default_factory=lambda: int(_env("KAIROS_PARTITIONS", "8")))
    metrics_port: int = field(default_factory=lambda: int(_env("KAIROS_METRICS_PORT", "9100")))
    config_path: str = field(default_factory=lambda: _env("KAIROS_CONFIG", "config/triggers.yaml"))
    fetch_max_wait_ms: int = field(
        default_factory=lambda: int(_env("KAIROS_FETCH_MAX_WAIT_MS", "100"))
    )
    session_timeout: float = field(
        default_factory=lambda: float(_env("KAIROS_SESSION_TIMEOUT", "6"))
    )
    heartbeat_interval: float = field(
        default_factory=lambda: float(_env("KAIROS_HEARTBEAT_INTERVAL", "0.5"))
    )
    commit_interval: float = field(
        default_factory=lambda: float(_env("KAIROS_COMMIT_INTERVAL", "1.0"))
    )
    flush_interval: float = field(
        default_factory=lambda: float(_env("KAIROS_FLUSH_INTERVAL", "0.5"))
    )
    timer_tick: float = field(default_factory=lambda: float(_env("KAIROS_TIMER_TICK", "0.1")))
    output_interval: float = field(
        default_factory=lambda: float(_env("KAIROS_OUTPUT_INTERVAL", "0.005"))
    )
    state_cache: int = field(default_factory=lambda: int(_env("KAIROS_STATE_CACHE", "200000")))
    log_level: str = field(default_factory=lambda: _env("KAIROS_LOG_LEVEL", "warning"))

    @property
    def bootstrap(self) -> str:
        """``host:port,host:port`` for plain aiokafka clients."""
        return self.broker_url.split("://", 1)[-1].replace(";", ",")
