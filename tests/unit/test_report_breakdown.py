"""``kairos report``'s breakdown of the audience and lead triggers (owners, audiences)."""

from __future__ import annotations

from kairos.report import breakdown, format_breakdown


def action(aid: str, trigger: str, **payload: object) -> dict[str, object]:
    return {"action_id": aid, "trigger": trigger, "customer_id": "c", "payload": payload}


def test_mqls_per_owner_and_entries_per_audience_count_each_action_once() -> None:
    actions = [
        action("a1", "lead_qualified", owner="ann", score=55.0),
        action("a2", "lead_qualified", owner="bob", score=60.0),
        action("a1", "lead_qualified", owner="ann", score=55.0),  # replayed: the same id
        action("a3", "lead_qualified", owner="ann", score=70.0),
        action("s1", "segment_entered", audience="vip"),
        action("s2", "segment_exited", audience="regulars"),
        action("w1", "welcome"),
    ]
    parts = breakdown(actions)
    assert parts == {
        "lead_qualified by owner": {"ann": 2, "bob": 1},
        "segment_entered by audience": {"vip": 1},
        "segment_exited by audience": {"regulars": 1},
    }
    assert format_breakdown(parts).splitlines() == [
        "lead_qualified by owner: ann 2, bob 1",
        "segment_entered by audience: vip 1",
        "segment_exited by audience: regulars 1",
    ]
    assert breakdown([action("w1", "welcome")]) == {}
