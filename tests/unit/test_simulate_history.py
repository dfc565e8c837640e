"""``kairos simulate --profile long-history``: the shape of the traffic it writes."""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from core.config import Config
from core.durations import DAY
from kairos import simulate, simulate_history
from kairos.errors import UserError
from kairos.replay import load, replay
from stream.events import Event, ProfileLine, decode_line

START = simulate.FILE_START
SPAN = 182 * DAY
EVENTS = 20_000


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return simulate_history.lines(EVENTS, EVENTS // 50, 7, START, SPAN)


@pytest.fixture(scope="module")
def decoded(lines: list[bytes]) -> list[Event | ProfileLine]:
    items = [decode_line(line) for line in lines]
    assert all(isinstance(i, Event | ProfileLine) for i in items), "every line is valid"
    return items  # type: ignore[return-value]


def test_about_fifty_events_per_customer_over_six_months(decoded: list) -> None:
    events = [i for i in decoded if isinstance(i, Event)]
    assert len(events) == EVENTS
    per_customer = Counter(e.customer_id for e in events)
    assert 42 <= EVENTS / len(per_customer) <= 58
    assert max(per_customer.values()) >= 80 and min(per_customer.values()) <= 20
    times = [e.ts for e in events]
    assert min(times) >= START and max(times) < START + SPAN
    assert max(times) - min(times) > 170 * DAY
    # each customer's history spans months, not days
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for e in events:
        first[e.customer_id] = min(first.get(e.customer_id, e.ts), e.ts)
        last[e.customer_id] = max(last.get(e.customer_id, e.ts), e.ts)
    spans = sorted(last[c] - first[c] for c in per_customer)
    assert spans[len(spans) // 2] > 60 * DAY


def test_sessions_of_five_to_twenty_events_and_most_customers_return(decoded: list) -> None:
    sessions: dict[str, Counter[str]] = defaultdict(Counter)
    for e in decoded:
        if isinstance(e, Event) and e.session_id is not None:
            sessions[e.customer_id][e.session_id] += 1
    sizes = [n for per in sessions.values() for n in per.values()]
    # 5-20 events; an order's follow-up and a rare duplicate line may add one or two;
    # a customer's last session ends where their history does
    assert sum(5 <= n <= 22 for n in sizes) / len(sizes) > 0.9
    assert max(sizes) <= 24
    assert 9 <= sum(sizes) / len(sizes) <= 15
    returning = sum(len(per) >= 2 for per in sessions.values()) / len(sessions)
    assert returning >= 0.75


def test_a_third_of_timestamps_are_iso_strings_with_offsets(lines: list[bytes]) -> None:
    events = [line for line in lines if b'"topic":"profiles"' not in line]
    iso = [line for line in events if b'"ts":"' in line]
    assert 0.30 <= len(iso) / len(events) <= 0.37
    assert any(b'Z"' in line for line in iso)
    assert any(b'-05:00"' in line for line in iso) and any(b'+05:30"' in line for line in iso)
    assert any(b'"ts":"2026-' in line and b" " in line.split(b'"ts":"')[1][:11] for line in iso)


def test_lines_are_in_time_order_profile_first(decoded: list) -> None:
    times = [i.at if isinstance(i, ProfileLine) else i.ts for i in decoded]
    assert times == sorted(times)
    seen: set[str] = set()
    for item in decoded:
        if isinstance(item, ProfileLine):
            seen.add(item.customer_id)
        else:
            assert item.customer_id in seen


def test_same_seed_same_bytes_other_seed_other_traffic(lines: list[bytes]) -> None:
    assert simulate_history.lines(EVENTS, EVENTS // 50, 7, START, SPAN) == lines
    assert simulate_history.lines(EVENTS, EVENTS // 50, 8, START, SPAN) != lines


def test_replay_sees_many_deadlines_and_stage_timers_per_customer(
    lines: list[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = replay(load([path]), Config())
    customers = EVENTS // 50
    assert result.events == EVENTS and result.invalid == 0
    assert result.timers_fired / customers >= 5  # carts, browsing, post-purchase, journey
    assert result.stages["at_risk"] + result.stages["churned"] >= customers // 10
    assert result.stages["loyalty"] > 0
    fired = {t: sum(c.values()) for t, c in result.fired.items()}
    for trigger in ("abandoned_cart", "browse_abandonment", "post_purchase", "win_back"):
        assert fired.get(trigger, 0) > 0, trigger


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulate.configure(parser)
    return parser.parse_args(list(argv))


def test_cli_writes_the_profile_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "h.jsonl"
    code = simulate.run(_args("--profile", "long-history", "--events", "2000", "--out", str(out)))
    assert code == 0
    written = out.read_bytes().splitlines()
    assert written == simulate_history.lines(2000, 40, 7, START, SPAN)


def test_cli_refuses_long_history_live() -> None:
    with pytest.raises(UserError, match="--profile long-history writes a file"):
        simulate.run(_args("--profile", "long-history"))


def test_default_profile_is_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    assert simulate.run(_args("--events", "500", "--out", str(out))) == 0
    first = out.read_bytes().splitlines()[0]
    expected = next(simulate.generate(1000, 500, 7, START, 7 * DAY))
    assert expected[0] == "profiles" and expected[1].encode() in first
