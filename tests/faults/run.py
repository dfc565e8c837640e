"""Run one scenario end to end and count: the one driver every test and soak run uses.

1. start the world (``Harness``); build the traffic plan from a time one second ahead;
2. publish it on schedule while the faults fire at their times, and compute the
   expectation (replay of the same file and config) meanwhile;
3. wait until the run settles (``Harness.settle``), then count (``counting.count``);
4. print one summary line, write ``var/faults/<name>.json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from .counting import Counts, count
from .expectations import Expected, expect
from .harness import VAR, Harness
from .observer import Outputs
from .publisher import now_ms, publish
from .receiver import Arrivals
from .scenarios import Fault, Scenario
from .services import ROOT
from .traffic import build

LEAD_MS = 1_000  # the plan starts this long after it is built
# An expected message that has not arrived this long after its deadline is lost. Longer
# than the dispatcher's lease (how long a killed dispatcher's actions wait to be taken
# over: 10 s to 42 s in the revisions measured).
SETTLE_S = 60.0
DEADLINE_TRIGGERS = frozenset({"abandoned_cart", "browse_abandonment", "post_purchase"})


async def run(scenario: Scenario, out_dir: Path = VAR, code_dir: Path = ROOT) -> Counts:
    """Run ``scenario`` against the code in ``code_dir`` (default: this checkout)."""
    started = time.monotonic()
    timeline: list[tuple[float, float, Fault]] = []  # (began, done) s after t0, fault
    async with Harness(scenario.name, scenario.setup, out_dir, code_dir) as h:
        plan = build(scenario.traffic, now_ms() + LEAD_MS)
        jsonl = h.dir / "traffic.jsonl"
        plan.write_jsonl(jsonl)
        publishing = asyncio.create_task(publish(plan, h.bootstrap))
        faults = [asyncio.create_task(_inject(h, f, plan.t0_ms, timeline)) for f in scenario.faults]
        try:
            decisions = h.dir / "replay-decisions.jsonl"
            expected = await expect(jsonl, h.config_path, decisions, h.code_dir)
            published = await publishing
            await asyncio.gather(*faults)
        finally:
            for task in [publishing, *faults]:
                task.cancel()
        not_before_ms = plan.end_ms + h.setup.campaign.last_deadline_s * 1000 + 2_000
        wait_s = max(0.0, (not_before_ms - now_ms()) / 1000) + SETTLE_S
        assert h.observer is not None
        await h.settle(set(expected.sends), not_before_ms, wait_s)
        outputs, arrivals = h.observer.outputs, h.receiver.arrivals
        # A copy that arrived before the dispatcher was dead may be sent again after it.
        kills = [int(plan.t0_ms + done * 1000) for _, done, f in timeline if f.kills_dispatcher]
        counts = count(scenario.name, plan, published, expected, outputs, arrivals, kills)
        counts.unexpected_exits = h.unexpected_exits()
        _dump(h.dir, outputs, arrivals)
    counts.seconds = time.monotonic() - started
    counts.t0_ms = plan.t0_ms
    counts.faults = [
        _at_fault(began, f.what, plan.t0_ms, expected, arrivals)
        for began, _, f in sorted(timeline, key=lambda entry: entry[0])
    ]
    _write(counts, scenario, out_dir)
    print(counts.summary(), flush=True)
    return counts


async def _inject(
    h: Harness, fault: Fault, t0_ms: int, timeline: list[tuple[float, float, Fault]]
) -> None:
    await asyncio.sleep(max(0.0, (t0_ms + fault.at_s * 1000 - now_ms()) / 1000))
    began = (now_ms() - t0_ms) / 1000
    await fault.do(h)
    timeline.append((began, (now_ms() - t0_ms) / 1000, fault))


def _at_fault(
    at_s: float, what: str, t0_ms: int, expected: Expected, arrivals: Arrivals
) -> dict[str, Any]:
    """What was at stake when a fault hit: sends decided but not yet arrived, and
    deadlines coming due in the next 15 s (the ones a killed worker must not lose)."""
    at_ms = t0_ms + at_s * 1000
    arrived = {a for a, t in arrivals.raw if t * 1000 <= at_ms}
    sends = expected.sends
    return {
        "at_s": round(at_s, 1),
        "what": what,
        "sends_not_yet_arrived": sum(
            1 for a, d in sends.items() if d["decided_at"] <= at_ms and a not in arrived
        ),
        "deadlines_due_next_15s": sum(
            1
            for d in expected.decisions.values()
            if d["trigger"] in DEADLINE_TRIGGERS and at_ms < d["decided_at"] <= at_ms + 15_000
        ),
    }


def _write(counts: Counts, scenario: Scenario, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "scenario": scenario.name,
        "title": scenario.title,
        "customers": scenario.traffic.customers,
        "duration_s": scenario.traffic.duration_s,
        "workers": scenario.setup.workers,
        "logs": str(out / "logs" / scenario.name),
        **counts.to_json(),
    }
    (out / f"{scenario.name}.json").write_text(json.dumps(data, indent=2) + "\n")


def _dump(directory: Path, outputs: Outputs, arrivals: Arrivals) -> None:
    """What was observed, raw, next to the logs: for diagnosing a failed count."""
    for name, records in (
        ("actions", outputs.actions),
        ("deliveries", outputs.deliveries),
        ("dead-letters", outputs.dead_letters),
    ):
        lines = (json.dumps(r, sort_keys=True) for r in records)
        (directory / f"{name}.jsonl").write_text("".join(f"{line}\n" for line in lines))
    lines = (json.dumps({"action_id": a, "at": t}) for a, t in arrivals.raw)
    (directory / "arrivals.jsonl").write_text("".join(f"{line}\n" for line in lines))
    if outputs.refetched:  # the observer's own fetches that skipped offsets (observer.py)
        (directory / "observer-refetched.json").write_text(json.dumps(outputs.refetched) + "\n")
