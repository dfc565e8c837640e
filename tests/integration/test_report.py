"""``kairos report`` reads ``actions`` and ``conversions`` and prints each trigger's effect."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka_helpers import produce

from core.effect import uplift

pytestmark = pytest.mark.integration

KAIROS = str(Path(sys.executable).with_name("kairos"))


def action(trigger: str, status: str, n: int) -> dict[str, Any]:
    return {
        "action_id": f"{trigger}-{n}",
        "trigger": trigger,
        "customer_id": f"c{n}",
        "channel": "email",
        "decided_at": 1_764_488_400_000 + n,
        "status": status,
        "reason": "test",
        "payload": {},
        "source_event_ids": [],
    }


def conversion(trigger: str, group: str, n: int, revenue: float) -> dict[str, Any]:
    return {
        "trigger": trigger,
        "group": group,
        "action_id": f"{trigger}-{n}",
        "customer_id": f"c{n}",
        "order_id": f"o{n}",
        "revenue": revenue,
        "at": 1_764_488_500_000 + n,
    }


def records(items: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(r["customer_id"].encode(), orjson.dumps(r)) for r in items]


async def test_report_counts_both_groups_and_the_uplift_with_its_interval(
    bootstrap: str,
) -> None:
    trigger = f"t_{uuid.uuid4().hex[:8]}"
    statuses = ["send"] * 3 + ["deferred_quiet_hours"] + ["held_out"] * 2 + ["suppressed_consent"]
    actions = [action(trigger, s, n) for n, s in enumerate(statuses)]
    actions.append(actions[0])  # a replayed decision: same action_id, counted once
    conversions = [
        conversion(trigger, "sent", 0, 10.0),
        conversion(trigger, "sent", 1, 20.0),
        conversion(trigger, "held_out", 4, 5.0),
    ]
    await produce(bootstrap, "actions", records(actions))
    await produce(bootstrap, "conversions", records(conversions))

    out = subprocess.run(
        [KAIROS, "report", "--json", "--bootstrap", bootstrap],
        capture_output=True,
        check=True,
        timeout=60,
    )
    row = orjson.loads(out.stdout)[trigger]
    assert (row["decisions"], row["sent"], row["held_out"]) == (7, 4, 2)
    assert (row["conversions_sent"], row["conversions_held_out"]) == (2, 1)
    assert (row["revenue_sent"], row["revenue_held_out"]) == (30.0, 5.0)
    assert (row["rate_sent"], row["rate_held_out"]) == (0.5, 0.5)
    assert row["revenue_per_decision"] == 5.0
    diff, ci = uplift(4, 2, 2, 1)
    assert row["uplift"] == diff == 0.0 and row["ci95"] == ci
    assert ci[0] < 0 < ci[1]

    table = subprocess.run(
        [KAIROS, "report", "--bootstrap", bootstrap], capture_output=True, check=True, timeout=60
    ).stdout.decode()
    line = next(line for line in table.splitlines() if line.startswith(trigger))
    assert "+0.0pp [" in line and "30.00/5.00" in line
