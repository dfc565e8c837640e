"""Keeps a running worker's (or dispatcher's) config equal to the file plus live overrides.

:class:`ConfigWatcher` subscribes to ``kairos:config`` and, as a fallback, looks at the
file's content and the overrides every 0.5 s, so a change reaches every worker within
about a second, with no restart and no state lost: ``Runtime.cfg`` is replaced as a
whole and the next event or timer uses the new config. (What overrides are, and the
Redis keys: ``state/overrides.py``.)

A file edit that does not validate is rejected: the worker keeps the last valid file,
logs every problem (``file:line: key: message``) and counts
``kairos_config_reloads_total{result="failure"}`` once per bad content. Overrides still
apply over the last valid file, so a CLI switch works even while the file is broken.
A bad override (written around the CLI, or a key a newer version renamed) is skipped
with the same error and metric; the other overrides apply.

Switching a trigger off (the rule of ``core.engine.on_timer``): from the next event on
it arms no timers and makes no decisions, and each of its pending timers is dropped
when it comes due while the trigger is off. Switching it on again does not fire on
history: only events from then on arm it; a timer still pending (due after the switch
back on) fires as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from core.config import Config
from core.config_file import ConfigError, Problem
from monitoring import metrics
from state.override_store import read_overrides
from state.overrides import (
    CHANNEL,
    FILE_EDIT_PREFIX,
    HISTORY,
    HISTORY_LIMIT,
    OVERRIDE_SOURCE,
    OVERRIDES,
    apply_overrides,
    decode_overrides,
    diff,
    file_config,
    history_entry,
    text_digest,
)
from stream.security import redis_kwargs

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def read_text(path: str | Path) -> str | None:
    """The file's text; ``None`` when there is no such file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def watched_config(text: str | None, source: str) -> Config:
    """``file_config``, with YAML nested too deeply refused like any other bad edit.

    (The CLI reports that as an unreadable file, kairos/inputs.py; here it must count as
    a failed reload and keep the running config, not end in a logged traceback.)
    """
    try:
        return file_config(text, source)
    except RecursionError:
        problem = Problem(source, 1, "(syntax)", "invalid YAML: nested too deeply")
        raise ConfigError([problem]) from None


class ConfigWatcher:
    """Keeps a worker's config equal to file + overrides; calls ``apply`` with each new one."""

    def __init__(
        self,
        path: str,
        redis_url: str,
        client: aioredis.Redis,
        apply: Callable[[Config], None],
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.path = path
        self.redis_url = redis_url
        self.client = client
        self.apply = apply
        self.poll_seconds = poll_seconds
        self.generation = 0
        self.active = Config()
        self._file_cfg = Config()
        self._file_digest = ""  # of the text last seen, valid or not
        self._valid_digest = ""  # of the last valid text
        self._file_seen = False
        self._overrides: dict[str, str] = {}
        self._bad_overrides: frozenset[tuple[str, str]] = frozenset()

    # startup: synchronous, before the worker takes any event
    def load_initial(self, fallback: Config) -> Config:
        """The effective config at start; ``fallback`` (the file as ``run`` read it) if need be."""
        text = read_text(self.path)
        self._file_seen = text is not None
        self._file_digest = self._valid_digest = text_digest(text)
        try:
            self._file_cfg = watched_config(text, self.path)
        except ConfigError as exc:
            self._failed(f"{self.path} (keeping the config read at start)", exc.problems)
            self._file_cfg = fallback
        try:
            client = redis.Redis.from_url(
                self.redis_url,
                socket_timeout=2,
                socket_connect_timeout=2,
                **redis_kwargs(self.redis_url),
            )
            try:
                self._overrides = read_overrides(client)
            finally:
                client.close()
        except redis.RedisError as exc:
            metrics.REDIS_ERRORS.labels("config_read").inc()
            log.warning("live config overrides unavailable at start (%s); using the file", exc)
        cfg = self._effective()
        self._activate(cfg, "start")
        return cfg

    async def run(self) -> None:
        """Follow ``kairos:config`` and poll as a fallback; never returns."""
        pubsub: Any = None
        while True:
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub()
                    await pubsub.subscribe(CHANNEL)
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.poll_seconds)
            except (redis.RedisError, OSError) as exc:
                metrics.REDIS_ERRORS.labels("config_subscribe").inc()
                log.warning("config channel unavailable (%s); polling only", exc)
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection
                        await pubsub.aclose()
                pubsub = None
                await asyncio.sleep(self.poll_seconds)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the worker from following config
                log.exception("config check failed")

    async def check(self) -> bool:
        """Look at the file and the overrides once; True when a new config was applied."""
        text = read_text(self.path)
        file_changed = await self._check_file(text)
        overrides = await self._fetch_overrides()
        if not file_changed and overrides == self._overrides:
            return False
        self._overrides = overrides
        cfg = self._effective()
        if cfg == self.active:
            metrics.CONFIG_RELOADS.labels("success").inc()
            return False
        self._activate(cfg, "file edit" if file_changed else "live override")
        return True

    async def _check_file(self, text: str | None) -> bool:
        """Re-read a changed file; True when a new valid file config replaced the old."""
        digest = text_digest(text)
        if digest == self._file_digest:
            return False
        self._file_digest = digest
        if text is None and self._file_seen:
            problem = Problem(self.path, 0, "(file)", "not found; keeping the last valid config")
            self._failed(self.path, [problem])
            return False
        try:
            new = watched_config(text, self.path)
        except ConfigError as exc:
            self._failed(self.path, exc.problems)
            return False
        old, old_digest = self._file_cfg, self._valid_digest
        self._file_cfg, self._valid_digest, self._file_seen = new, digest, text is not None
        await self._record_file_edit(old, new, old_digest, digest)
        return True

    async def _fetch_overrides(self) -> dict[str, str]:
        try:
            return decode_overrides(await self.client.hgetall(OVERRIDES))
        except (redis.RedisError, OSError) as exc:
            metrics.REDIS_ERRORS.labels("config_read").inc()
            log.warning("live config overrides unavailable (%s); keeping the last ones", exc)
            return self._overrides

    async def _record_file_edit(
        self, old: Config, new: Config, old_digest: str, digest: str
    ) -> None:
        """One history entry per changed setting, by whichever worker sees the edit first."""
        changes = diff(old, new)
        if not changes:
            return
        try:
            first = await self.client.set(
                f"{FILE_EDIT_PREFIX}{old_digest}:{digest}", "1", nx=True, ex=600
            )
            if first:
                by = f"file {self.path}"
                records = [history_entry(k, o, n, by, "file") for k, o, n in changes]
                await self.client.lpush(HISTORY, *records)
                await self.client.ltrim(HISTORY, 0, HISTORY_LIMIT - 1)
        except (redis.RedisError, OSError) as exc:
            metrics.REDIS_ERRORS.labels("config_history").inc()
            log.warning("could not record the file edit in the config history (%s)", exc)

    def _effective(self) -> Config:
        cfg, problems = apply_overrides(self._file_cfg, self._overrides)
        bad = frozenset((p.key, p.message) for p in problems)
        if bad and bad != self._bad_overrides:
            self._failed(f"{OVERRIDE_SOURCE}s (skipping these)", problems)
        self._bad_overrides = bad
        return cfg

    def _activate(self, cfg: Config, why: str) -> None:
        changes = diff(self.active, cfg) if self.generation else []
        self.active = cfg
        self.generation += 1
        self.apply(cfg)
        metrics.CONFIG_RELOADS.labels("success").inc()
        metrics.CONFIG_GENERATION.set(self.generation)
        summary = "; ".join(f"{k}: {o} -> {n}" for k, o, n in changes[:20])
        more = f" (+{len(changes) - 20} more)" if len(changes) > 20 else ""
        log.warning("config generation %d active (%s) %s%s", self.generation, why, summary, more)

    def _failed(self, what: str, problems: list[Problem]) -> None:
        metrics.CONFIG_RELOADS.labels("failure").inc()
        listed = "\n  ".join(str(p) for p in problems)
        log.error("config rejected: %s; %d problem(s):\n  %s", what, len(problems), listed)
