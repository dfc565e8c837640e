"""Every environment setting of Kairos, in one place, with its default.

The security rows are read by ``stream/security.py`` (checked when a client is made: a
value that cannot work stops the command with a message naming the variable).

| variable | default | meaning |
|---|---|---|
| ``BROKER_URL`` | ``kafka://127.0.0.1:9092`` | Kafka bootstrap (``kafka://host:port[;host:port]``) |
| ``REDIS_URL`` | ``redis://127.0.0.1:6379/0`` | caps, idempotency keys, live config; ``rediss://`` for TLS, ``redis://:PASSWORD@host`` for AUTH |
| ``KAIROS_REDIS_SSL_CAFILE`` | system CAs | ``rediss://``: CA that signed the server's certificate (always verified) |
| ``KAIROS_REDIS_SSL_CERTFILE`` / ``_KEYFILE`` | none | ``rediss://``: client certificate and key, for servers that require one |
| ``KAIROS_KAFKA_SECURITY_PROTOCOL`` | ``PLAINTEXT`` | ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL`` (production: ``SASL_SSL``) |
| ``KAIROS_KAFKA_SASL_MECHANISM`` | ``PLAIN`` | ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` |
| ``KAIROS_KAFKA_SASL_USERNAME`` | none | SASL user (required with ``SASL_*``) |
| ``KAIROS_KAFKA_SASL_PASSWORD`` / ``_PASSWORD_FILE`` | none | SASL password, or a file holding it (a mounted secret) |
| ``KAIROS_KAFKA_SSL_CAFILE`` | system CAs | ``SSL`` / ``SASL_SSL``: CA that signed the brokers' certificates |
| ``KAIROS_KAFKA_SSL_CERTFILE`` / ``_KEYFILE`` | none | ``SSL`` / ``SASL_SSL``: client certificate and key (mutual TLS) |
| ``KAIROS_APP_ID`` | ``kairos`` | Faust app id = consumer group and changelog prefix |
| ``KAIROS_STORE`` | ``memory://`` | Faust table store (``rocksdb://`` in production: ``pip install '.[rocksdb]'``) |
| ``KAIROS_DATA_DIR`` | ``var/data`` | where a RocksDB store keeps its files (one folder per app id) |
| ``KAIROS_PARTITIONS`` | ``8`` | partitions of every topic (input topics must match) |
| ``KAIROS_METRICS_PORT`` | ``9100`` | ``/metrics``, ``/health``, ``/ready`` (0 = off) |
| ``KAIROS_METRICS_HOST`` | ``0.0.0.0`` | address they listen on (``kairos dev``: ``127.0.0.1``) |
| ``KAIROS_CONFIG`` | ``config/triggers.yaml`` | campaign config file |
| ``KAIROS_FETCH_MAX_WAIT_MS`` | ``100`` | broker long-poll wait (Faust hard-codes 1500: the latency floor) |
| ``KAIROS_SESSION_TIMEOUT`` | ``6`` | consumer group session timeout, s (production: 30) |
| ``KAIROS_HEARTBEAT_INTERVAL`` | ``0.5`` | s (production: 3) |
| ``KAIROS_COMMIT_INTERVAL`` | ``1.0`` | offset commit interval, s; state is flushed first |
| ``KAIROS_FLUSH_INTERVAL`` | ``0.5`` | how often dirty customer state goes to the changelog, s |
| ``KAIROS_TIMER_TICK`` | ``0.1`` | how often due timers are popped, s |
| ``KAIROS_OUTPUT_INTERVAL`` | ``0.005`` | how often buffered output records are sent, s |
| ``KAIROS_STATE_CACHE`` | ``200000`` | decoded customer states kept in memory per worker |
| ``KAIROS_STANDBY_REPLICAS`` | ``0`` | warm copies of each partition's state on other workers (production: 1). Off by default: the Tansu dev broker under-reports a changelog's end offset after a worker dies mid-write, and Faust then refuses the standby copy (ConsistencyError) |
| ``KAIROS_ALIGN_IDLE_MS`` | ``5000`` | how long a partition's events wait for a co-partitioned topic known to have unread records (a slow fetch), ms |
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
    metrics_host: str = field(default_factory=lambda: _env("KAIROS_METRICS_HOST", "0.0.0.0"))
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
    standby_replicas: int = field(default_factory=lambda: int(_env("KAIROS_STANDBY_REPLICAS", "0")))
    align_idle_ms: int = field(default_factory=lambda: int(_env("KAIROS_ALIGN_IDLE_MS", "5000")))
    log_level: str = field(default_factory=lambda: _env("KAIROS_LOG_LEVEL", "warning"))

    @property
    def bootstrap(self) -> str:
        """``host:port,host:port`` for plain aiokafka clients."""
        return self.broker_url.split("://", 1)[-1].replace(";", ",")
