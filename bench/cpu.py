"""CPU time of the processes a bench phase shares the machine with (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its threads so far (0 once it is gone)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    return 0.0


@contextlib.contextmanager
def cores(pids: dict[str, int | None], into: dict) -> Iterator[None]:
    """Put each process's average CPU use over the block, in cores, into ``into``."""
    live = {name: pid for name, pid in pids.items() if pid}
    start, t0 = {name: cpu_seconds(pid) for name, pid in live.items()}, time.monotonic()
    yield
    wall = time.monotonic() - t0
    into.update(
        {name: round((cpu_seconds(pid) - start[name]) / wall, 2) for name, pid in live.items()}
    )
