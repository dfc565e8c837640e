"""What the run should produce: ``kairos replay`` on the same file with the same config.

Replay is the same core, offline, on event time. By default its clock stops at the last
event, so deadlines due after it (the last customers' carts) would not fire, while the
live workers fire them on the wall clock: the replay runs with ``--until +10m``, far
past every deadline of the fault campaign and far before any lifecycle timer (30 days).
A revision of ``kairos replay`` without ``--until`` is run without it, and the result
says so (``clock_past_end`` false): deadlines after the last event are then not
expected, and show up as extra live decisions.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

HORIZON = "+10m"


@dataclass(slots=True)
class Expected:
    decisions: dict[str, dict[str, Any]]  # action_id -> the decision as an actions record
    events: int  # valid events replayed
    invalid: int  # lines replay rejected
    clock_past_end: bool  # the replay ran its clock past the last event

    @property
    def sends(self) -> dict[str, dict[str, Any]]:
        return {a: d for a, d in self.decisions.items() if d["status"] == "send"}


class ReplayFailed(RuntimeError):
    """``kairos replay`` exited with an error: no expectation, no verdict."""


async def expect(jsonl: Path, config: Path, out: Path, code_dir: Path) -> Expected:
    """Run ``kairos replay`` (of the code in ``code_dir``) and read its decisions from ``out``."""
    args = [str(jsonl), "--config", str(config), "--json", "--decisions-out", str(out)]
    code, stdout, stderr = await _replay([*args, "--until", HORIZON], code_dir)
    clock_past_end = True
    if code != 0 and b"--until" in stderr:  # a revision before --until
        code, stdout, stderr = await _replay(args, code_dir)
        clock_past_end = False
    if code != 0:
        raise ReplayFailed(f"kairos replay exited with {code}: {stderr.decode(errors='replace')}")
    summary = orjson.loads(stdout)
    decisions: dict[str, dict[str, Any]] = {}
    for line in out.read_bytes().splitlines():
        record = orjson.loads(line)
        decisions.setdefault(record["action_id"], record)
    return Expected(decisions, summary["events"], summary["invalid"], clock_past_end)


async def _replay(args: list[str], code_dir: Path) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kairos.cli",
        "replay",
        *args,
        cwd=code_dir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout, stderr
