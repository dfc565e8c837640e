"""Read a Kairos process's Prometheus metrics (``/metrics`` on its metrics port)."""

from __future__ import annotations

import re

import aiohttp

from kairos.launcher import LOOPBACK

_LAG = re.compile(r"^kairos_consumer_lag_messages\{([^}]*)\}", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


async def scrape(port: int) -> str:
    """The text of ``/metrics``, or "" when the process does not answer."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(f"http://{LOOPBACK}:{port}/metrics") as response,
        ):
            return await response.text() if response.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError):
        return ""


async def owned_partitions(port: int, topic: str = "clickstream") -> set[int]:
    """Partitions of ``topic`` this worker reports lag for: the ones assigned to it.

    The worker refreshes the gauge every 2 s and removes revoked partitions' series.
    """
    owned = set()
    for match in _LAG.finditer(await scrape(port)):
        labels = dict(_LABEL.findall(match.group(1)))
        if labels.get("topic") == topic:
            owned.add(int(labels["partition"]))
    return owned
