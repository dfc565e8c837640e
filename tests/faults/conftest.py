"""The fault suite's marker (``pytest -m faults`` runs only it, ``-m 'not faults'`` skips
it), and a broker behind the fault proxy for the tests of single parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import spared
from .proxy import FaultProxy
from .services import Broker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: end-to-end fault scenarios on real processes (tests/faults)"
    )


@pytest.fixture
async def proxied_broker(tmp_path: Path) -> AsyncIterator[tuple[Broker, FaultProxy]]:
    """A broker that advertises the proxy's port: every client connection goes through it."""
    proxy = FaultProxy(("127.0.0.1", 0), spare=spared)
    broker = Broker(tmp_path, advertised_port=proxy.port)
    proxy.upstream = ("127.0.0.1", broker.port)
    broker.start()
    try:
        await broker.ready()
        await proxy.start()
        yield broker, proxy
    finally:
        await proxy.close()
        await broker.stop()
