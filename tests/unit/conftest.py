"""A unit test starts no process: no broker, no redis-server, no command, no fork.

That keeps ``make test-unit`` at seconds and runnable anywhere. A test that needs a
process belongs in ``tests/integration``; the few here that run a ``kairos`` command or
fork carry the ``subprocess`` marker (``make test-unit`` leaves them to ``make test``).
Enforced: asking for a fixture that starts a service stops the run, and starting a
process from an unmarked test fails it, saying where to move it.
"""

from __future__ import annotations

import _posixsubprocess
import contextlib
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

SERVICE_FIXTURES = frozenset({"broker", "bootstrap", "redis_server", "redis_url"})
MOVE = "a unit test starts no process: move it to tests/integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if not str(item.path).startswith(here + os.sep):
            continue
        wanted = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(f"{item.nodeid} asks for {', '.join(sorted(wanted))}: {MOVE}")


@contextlib.contextmanager
def _no_process(nodeid: str) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{nodeid} started a process: {MOVE} (or mark it subprocess)")

    with pytest.MonkeyPatch.context() as patch:
        # Every way Python starts a process: subprocess (its own reference to fork_exec, or
        # posix_spawn), multiprocessing's spawn and forkserver (fork_exec), and os.fork.
        patch.setattr(subprocess, "_fork_exec", refuse)
        patch.setattr(_posixsubprocess, "fork_exec", refuse)
        patch.setattr(os, "posix_spawn", refuse)
        patch.setattr(os, "posix_spawnp", refuse)
        patch.setattr(os, "fork", refuse)
        yield


def _guard(item: pytest.Item) -> contextlib.AbstractContextManager[None]:
    if item.get_closest_marker("subprocess"):
        return contextlib.nullcontext()
    return _no_process(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _guard(item):  # fixtures of every scope are made here
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _guard(item):
        return (yield)
