"""Count what came out of a run against what went in and what replay decided.

* **lost**: expected ``send`` action_ids (replay) that never reached the receiver;
* **duplicated**: action_ids that reached it more than once (``resends`` counts every
  extra request, so one action sent three times is 1 duplicated, 2 resends). Delivery
  is at-least-once towards providers that de-duplicate on the ``action_id`` (issue 11):
  a dispatcher killed after a request left but before it recorded the answer must send
  it again. Such a copy, one that arrived again after a dispatcher kill that came after
  the previous copy, is counted in ``duplicated_after_kill``; any other repeat is a
  duplicated effect (``duplicated_unexplained``), and fails the run;
* **decisions**: live (unique ``action_id`` on ``actions``) against replay, as sets of
  ``(trigger, customer_id, action_id)``, and the statuses of the common ones;
* **dead letters**: one per bad record published, matched by source (topic, partition,
  offset);
* **the dispatcher's account**: the last ``deliveries`` outcome of each action must agree
  with the receiver (``dead`` for a message that arrived is a wrong record).

Each lost action carries its evidence: whether live decided it at all, its delivery
outcomes, and the topic/partition/offset of the events that caused it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from .expectations import Expected
from .observer import Outputs
from .publisher import Published
from .receiver import Arrivals
from .traffic import Plan

BAD_KINDS = ("malformed", "poison")
SAMPLE = 20  # lost / missing actions listed in full in the JSON


@dataclass(slots=True)
class Counts:
    scenario: str
    seconds: float = 0.0
    # in
    records_published: int = 0
    events: int = 0  # valid events (duplicates excluded)
    duplicates_published: int = 0
    bad_records_published: int = 0
    publish_failed: int = 0
    publish_max_behind_ms: int = 0
    # decisions
    decisions_replay: int = 0
    decisions_live: int = 0  # unique action_ids on `actions`
    decisions_live_raw: int = 0  # records on `actions` (re-emits after a crash included)
    decisions_missing: int = 0  # in replay, not live
    decisions_extra: int = 0  # live, not in replay
    status_mismatches: int = 0
    replay_clock_past_end: bool = True
    # at the receiver
    expected_sends: int = 0
    arrivals_raw: int = 0
    arrivals_unique: int = 0
    lost: int = 0
    duplicated: int = 0  # action_ids that arrived more than once
    duplicated_after_kill: int = 0  # ...every repeat after a dispatcher kill: at-least-once
    duplicated_unexplained: int = 0  # ...the others: a duplicated effect
    resends: int = 0  # extra requests, all duplicated action_ids together
    unexpected_arrivals: int = 0  # arrived, but replay did not decide a send
    bad_signatures: int = 0
    # the dispatcher's own account, by final outcome per action on `deliveries`
    delivery_outcomes: dict[str, int] = field(default_factory=dict)
    dead_but_arrived: int = 0  # recorded dead or failed, yet the receiver has it
    delivered_not_arrived: int = 0  # recorded delivered, yet the receiver never saw it
    # dead letters
    dead_letters_expected: int = 0
    dead_letters: int = 0  # unique sources
    dead_letters_missing: int = 0
    dead_letters_unexpected: int = 0  # for records that were not bad
    # the faults as they happened, with what was at stake (see run.py)
    faults: list[dict[str, Any]] = field(default_factory=list)
    t0_ms: int = 0  # the traffic's time zero: fault times and decided_at meet here
    # processes that exited without being told to
    unexpected_exits: dict[str, list[int]] = field(default_factory=dict)
    # evidence
    lost_sample: list[dict[str, Any]] = field(default_factory=list)
    missing_sample: list[dict[str, Any]] = field(default_factory=list)
    extra_sample: list[dict[str, Any]] = field(default_factory=list)
    status_sample: list[dict[str, Any]] = field(default_factory=list)
    duplicated_sample: list[str] = field(default_factory=list)
    dead_letters_missing_sample: list[list[Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing sent twice, live decided what replay decided."""
        return (
            self.lost == 0
            and self.duplicated_unexplained == 0
            and self.decisions_missing == 0
            and self.decisions_extra == 0
            and self.status_mismatches == 0
            and self.dead_letters_missing == 0
            and self.unexpected_arrivals == 0
            and self.dead_letters_unexpected == 0
            and self.dead_but_arrived == 0
            and self.delivered_not_arrived == 0
        )

    def summary(self) -> str:
        return (
            f"{self.scenario}: {'OK' if self.ok else 'FAIL'} | events {self.events:,} "
            f"(+{self.duplicates_published} dup, {self.bad_records_published} bad) | "
            f"decisions live {self.decisions_live:,} replay {self.decisions_replay:,} "
            f"(missing {self.decisions_missing}, extra {self.decisions_extra}, "
            f"status {self.status_mismatches}) | sends expected {self.expected_sends:,} "
            f"arrived {self.arrivals_unique:,} lost {self.lost} dup "
            f"{self.duplicated_unexplained} (+{self.duplicated_after_kill} resent after a "
            f"dispatcher kill) | dead letters {self.dead_letters}/"
            f"{self.dead_letters_expected} | {self.seconds:.0f}s"
        )

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def count(
    scenario: str,
    plan: Plan,
    published: Published,
    expected: Expected,
    outputs: Outputs,
    arrivals: Arrivals,
    dispatcher_kills_ms: Sequence[int] = (),
) -> Counts:
    c = Counts(scenario)
    _count_inputs(c, plan, published)
    where = published.by_event_id(plan)
    live = _count_decisions(c, expected, outputs, where)
    _count_arrivals(c, expected, outputs, arrivals, live, where)
    _count_duplicates(c, arrivals, dispatcher_kills_ms)
    _count_dead_letters(c, plan, published, outputs)
    return c


def _count_inputs(c: Counts, plan: Plan, published: Published) -> None:
    c.records_published = len(plan.records)
    c.events = plan.count("event")
    c.duplicates_published = plan.count("duplicate")
    c.bad_records_published = plan.count(*BAD_KINDS)
    c.publish_failed = published.failed
    c.publish_max_behind_ms = published.max_behind_ms


def _count_decisions(
    c: Counts, expected: Expected, outputs: Outputs, where: dict[str, tuple[str, int, int]]
) -> dict[str, dict[str, Any]]:
    live: dict[str, dict[str, Any]] = {}
    for action in outputs.actions:
        live.setdefault(action["action_id"], action)
    replayed = expected.decisions
    c.decisions_replay = len(replayed)
    c.decisions_live = len(live)
    c.decisions_live_raw = len(outputs.actions)
    c.replay_clock_past_end = expected.clock_past_end
    missing = sorted(set(replayed) - set(live), key=lambda a: replayed[a]["decided_at"])
    extra = sorted(set(live) - set(replayed), key=lambda a: live[a]["decided_at"])
    c.decisions_missing, c.decisions_extra = len(missing), len(extra)
    c.missing_sample = [_evidence(replayed[a], where) for a in missing[:SAMPLE]]
    c.extra_sample = [_evidence(live[a], where) for a in extra[:SAMPLE]]
    differing = [a for a in replayed if a in live and replayed[a]["status"] != live[a]["status"]]
    c.status_mismatches = len(differing)
    c.status_sample = [
        {**_evidence(live[a], where), "replay_status": replayed[a]["status"]}
        for a in differing[:SAMPLE]
    ]
    return live


def _count_arrivals(
    c: Counts,
    expected: Expected,
    outputs: Outputs,
    arrivals: Arrivals,
    live: dict[str, dict[str, Any]],
    where: dict[str, tuple[str, int, int]],
) -> None:
    sends = expected.sends
    received = arrivals.counts()
    c.expected_sends = len(sends)
    c.arrivals_raw = len(arrivals.raw)
    c.arrivals_unique = len(received)
    c.bad_signatures = arrivals.bad_signature
    lost = sorted(set(sends) - set(received), key=lambda a: sends[a]["decided_at"])
    c.lost = len(lost)
    c.resends = c.arrivals_raw - c.arrivals_unique
    c.unexpected_arrivals = len(set(received) - set(sends))

    outcomes: dict[str, list[str]] = {}
    for record in outputs.deliveries:
        outcomes.setdefault(record["action_id"], []).append(record["outcome"])
    final = {a: seq[-1] for a, seq in outcomes.items()}
    c.delivery_outcomes = dict(Counter(final.values()).most_common())
    c.dead_but_arrived = sum(
        1 for a, o in final.items() if o in ("dead", "failed") and a in received
    )
    c.delivered_not_arrived = sum(
        1 for a, o in final.items() if o == "delivered" and a not in received
    )
    c.lost_sample = [
        {
            **_evidence(sends[a], where),
            "decided_live": a in live,
            "live_status": live[a]["status"] if a in live else None,
            "deliveries": outcomes.get(a, []),
        }
        for a in lost[:SAMPLE]
    ]


def _count_duplicates(c: Counts, arrivals: Arrivals, kills_ms: Sequence[int]) -> None:
    times: dict[str, list[float]] = defaultdict(list)
    for action_id, at in arrivals.raw:
        times[action_id].append(at * 1000)
    repeated = {a: sorted(t) for a, t in times.items() if len(t) > 1}
    after_kill = {
        a
        for a, t in repeated.items()
        if all(any(first <= k <= then for k in kills_ms) for first, then in pairwise(t))
    }
    unexplained = sorted(set(repeated) - after_kill)
    c.duplicated = len(repeated)
    c.duplicated_after_kill = len(after_kill)
    c.duplicated_unexplained = len(unexplained)
    c.duplicated_sample = (unexplained + sorted(after_kill))[:SAMPLE]


def _count_dead_letters(c: Counts, plan: Plan, published: Published, outputs: Outputs) -> None:
    expected = {
        position
        for record, position in zip(plan.records, published.positions, strict=True)
        if record.kind in BAD_KINDS and position is not None
    }
    seen = {(d.get("topic"), d.get("partition"), d.get("offset")) for d in outputs.dead_letters}
    missing = sorted(expected - seen)
    c.dead_letters_expected = len(expected)
    c.dead_letters = len(seen)
    c.dead_letters_missing = len(missing)
    c.dead_letters_unexpected = len(seen - expected)
    c.dead_letters_missing_sample = [list(m) for m in missing[:SAMPLE]]


def _evidence(decision: dict[str, Any], where: dict[str, tuple[str, int, int]]) -> dict[str, Any]:
    """The decision's identity and where its causing events sit in the input topics."""
    return {
        "action_id": decision["action_id"],
        "trigger": decision["trigger"],
        "customer_id": decision["customer_id"],
        "status": decision["status"],
        "decided_at": decision["decided_at"],
        "sources": [
            {"event_id": e, "at": list(where[e]) if e in where else None}
            for e in decision.get("source_event_ids", [])
        ],
    }
