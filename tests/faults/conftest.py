"""The fault suite's marker: ``pytest -m faults`` runs only it, ``-m 'not faults'`` skips it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: end-to-end fault scenarios on real processes (tests/faults)"
    )
