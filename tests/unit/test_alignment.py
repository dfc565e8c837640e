"""The aligner: event-time order across co-partitioned topics, and no offset ever skipped."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stream.alignment import MAX_RESEEKS, UNKNOWN, Aligner, Jump

INPUTS = frozenset({"clickstream", "orders", "engagement"})


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Rec:
    tp: TP
    offset: int
    timestamp: float

    @property
    def topic(self) -> str:
        return self.tp.topic


def recs(tp: TP, start: int, *timestamps: float) -> list[Rec]:
    return [Rec(tp, start + i, ts) for i, ts in enumerate(timestamps)]


def drain(aligner: Aligner, highwater: dict[TP, int] | None = None) -> list[tuple[str, int]]:
    out = []
    for record in aligner.ready(lambda tp: (highwater or {}).get(tp)):
        out.append((record.topic, record.offset))
        aligner.delivered(record)
    return out


CLICKS, ORDERS = TP("clickstream", 0), TP("orders", 0)


def test_records_of_one_partition_come_out_lowest_timestamp_first_across_topics() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0, 2.0, 4.0))
    aligner.add(ORDERS, recs(ORDERS, 0, 3.0))
    assert drain(aligner) == [
        ("clickstream", 0),
        ("clickstream", 1),
        ("orders", 0),
        ("clickstream", 2),
    ]


def test_partitions_are_independent_tasks() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    other = TP("orders", 1)
    aligner.add(other, recs(other, 0, 9.0))
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0))
    assert sorted(drain(aligner)) == [("clickstream", 0), ("orders", 0)]


def test_an_order_waits_for_a_lagging_topic_of_its_partition_then_goes_on() -> None:
    now = [0.0]
    aligner = Aligner(INPUTS, max_idle_ms=500, clock=lambda: now[0])
    aligner.seek(CLICKS, 0)
    aligner.add(ORDERS, recs(ORDERS, 0, 5.0))
    lagging = {CLICKS: 3}  # clickstream has 3 records on the broker, none fetched yet
    assert drain(aligner, lagging) == []
    assert aligner.waiting()
    now[0] = 0.2
    assert drain(aligner, lagging) == []
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0, 2.0, 6.0))  # the fetch arrives
    assert drain(aligner, lagging) == [
        ("clickstream", 0),
        ("clickstream", 1),
        ("orders", 0),
        ("clickstream", 2),
    ]
    aligner.add(ORDERS, recs(ORDERS, 1, 7.0))
    assert drain(aligner, {CLICKS: 5}) == []  # clickstream lags again
    now[0] = 0.8  # longer than max_idle_ms: a slow partition does not stall the task
    assert drain(aligner, {CLICKS: 5}) == [("orders", 1)]


def test_a_caught_up_topic_does_not_hold_the_others() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=60_000)
    aligner.seek(CLICKS, 3)
    aligner.add(ORDERS, recs(ORDERS, 0, 5.0))
    assert drain(aligner, {CLICKS: 3}) == [("orders", 0)]


def test_a_jump_past_the_expected_offset_asks_to_seek_back_and_is_not_taken() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.seek(CLICKS, 10)
    assert aligner.add(CLICKS, recs(CLICKS, 10, 1.0, 2.0)) is None
    assert drain(aligner) == [("clickstream", 10), ("clickstream", 11)]
    jump = aligner.add(CLICKS, recs(CLICKS, 15, 3.0, 4.0))  # 12-14 were never handed on
    assert jump == Jump(CLICKS, expected=12, got=15)
    assert drain(aligner) == []
    aligner.seek(CLICKS, 12)
    aligner.add(CLICKS, recs(CLICKS, 12, 2.5, 2.6, 2.7, 3.0, 4.0))
    assert [o for _, o in drain(aligner)] == [12, 13, 14, 15, 16]


def test_records_before_the_expected_offset_are_stale_and_dropped() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.seek(CLICKS, 0)
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0, 2.0))
    aligner.add(CLICKS, recs(CLICKS, 1, 2.0, 3.0))  # a fetch overlapping the last one
    assert [o for _, o in drain(aligner)] == [0, 1, 2]


def test_the_same_jump_again_and_again_is_a_real_hole_in_the_log() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.seek(CLICKS, 0)
    for _ in range(MAX_RESEEKS):
        assert aligner.add(CLICKS, recs(CLICKS, 4, 1.0)) == Jump(CLICKS, 0, 4)
        aligner.seek(CLICKS, 0)
    assert aligner.add(CLICKS, recs(CLICKS, 4, 1.0)) is None  # compacted away: go on
    assert drain(aligner) == [("clickstream", 4)]
    assert aligner.holes == 1


def test_a_record_whose_hand_over_was_interrupted_comes_again() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0, 2.0))
    for _record in aligner.ready(lambda tp: None):
        break  # the callback was cancelled (a rebalance): delivered() never called
    assert drain(aligner) == [("clickstream", 0), ("clickstream", 1)]


def test_a_seek_back_to_the_committed_offset_drops_what_was_buffered() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.seek(CLICKS, 5)
    aligner.add(CLICKS, recs(CLICKS, 5, 1.0, 2.0, 3.0))
    drain(aligner)
    aligner.add(CLICKS, recs(CLICKS, 8, 4.0))
    aligner.seek(CLICKS, 6)  # recovery: back to the committed offset
    assert aligner.floor(CLICKS) == 6
    aligner.add(CLICKS, recs(CLICKS, 6, 2.0, 3.0, 4.0))
    assert [o for _, o in drain(aligner)] == [6, 7, 8]


def test_revoked_partitions_are_forgotten() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0))
    aligner.forget({CLICKS})
    assert drain(aligner) == []
    assert aligner.buffered(CLICKS) == 0


def test_topics_outside_the_aligned_set_are_not_tracked() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500)
    aligner.seek(TP("kairos-customers-changelog", 0), 7)
    assert aligner.floor(TP("kairos-customers-changelog", 0)) is None


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), max_size=30),
    st.lists(st.floats(0, 1e6, allow_nan=False), max_size=30),
    st.lists(st.integers(1, 10), min_size=1, max_size=8),
)
def test_any_fetch_pattern_hands_every_record_on_once_in_offset_order_per_topic(
    click_ts: list[float], order_ts: list[float], fetch_sizes: list[int]
) -> None:
    aligner = Aligner(INPUTS, max_idle_ms=0)
    logs = {CLICKS: recs(CLICKS, 0, *click_ts), ORDERS: recs(ORDERS, 0, *order_ts)}
    fetched = dict.fromkeys(logs, 0)
    out: list[tuple[str, int]] = []
    rounds = 0
    while any(fetched[tp] < len(log) for tp, log in logs.items()) or rounds == 0:
        for i, (tp, log) in enumerate(logs.items()):
            size = fetch_sizes[(rounds + i) % len(fetch_sizes)]
            aligner.add(tp, log[fetched[tp] : fetched[tp] + size])
            fetched[tp] = min(len(log), fetched[tp] + size)
        out += drain(aligner, {tp: len(log) for tp, log in logs.items()})
        rounds += 1
    out += drain(aligner)
    for tp, log in logs.items():
        assert [o for t, o in out if t == tp.topic] == list(range(len(log)))


def test_an_end_offset_listed_after_the_seek_makes_the_task_wait_before_any_fetch() -> None:
    # Restarted: no fetch has brought clickstream's high watermark yet, but its end offset
    # says records are there; the order must not go before them.
    now = [0.0]
    aligner = Aligner(INPUTS, max_idle_ms=5000, clock=lambda: now[0])
    aligner.seek(CLICKS, 10)
    aligner.seek(ORDERS, 0)
    aligner.ends_at(CLICKS, 12)
    aligner.add(ORDERS, recs(ORDERS, 0, 5.0))
    assert drain(aligner) == []  # no high watermark known: the end offset alone holds it
    now[0] = 1.0
    assert drain(aligner) == []
    aligner.add(CLICKS, recs(CLICKS, 10, 1.0, 7.0))
    assert drain(aligner) == [("clickstream", 10), ("orders", 0), ("clickstream", 11)]
    aligner.add(ORDERS, recs(ORDERS, 1, 8.0))
    assert drain(aligner) == [("orders", 1)]  # clickstream reached its end: no more waiting


def test_a_jump_says_the_records_before_it_exist_and_the_task_waits_for_them() -> None:
    now = [0.0]
    aligner = Aligner(INPUTS, max_idle_ms=5000, clock=lambda: now[0])
    aligner.seek(CLICKS, 5)
    aligner.seek(ORDERS, 0)
    assert aligner.add(CLICKS, recs(CLICKS, 9, 3.0)) == Jump(CLICKS, 5, 9)
    aligner.add(ORDERS, recs(ORDERS, 0, 2.5))
    now[0] = 2.0  # the fetch after the seek back is slow: the order still waits
    assert drain(aligner) == []
    aligner.add(CLICKS, recs(CLICKS, 5, 1.0, 2.0, 3.0, 4.0, 5.0))
    assert drain(aligner)[:3] == [("clickstream", 5), ("clickstream", 6), ("orders", 0)]


def test_a_new_seek_forgets_the_end_it_knew() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=60_000)
    aligner.seek(CLICKS, 0)
    aligner.ends_at(CLICKS, 50)
    aligner.seek(CLICKS, 60)  # moved past it (another owner's commit)
    aligner.add(ORDERS, recs(ORDERS, 0, 5.0))
    assert drain(aligner) == [("orders", 0)]


def test_a_partition_not_accepted_yet_keeps_its_records_until_it_is() -> None:
    # After a rebalance, records fetched before the partition's state is restored wait.
    aligner = Aligner(INPUTS, max_idle_ms=500)
    other = TP("clickstream", 1)
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0, 2.0))
    aligner.add(other, recs(other, 0, 1.5))
    accepted = {1}
    out = []
    for record in aligner.ready(lambda tp: None, accepted.__contains__):
        out.append((record.topic, record.tp.partition, record.offset))
        aligner.delivered(record)
    assert out == [("clickstream", 1, 0)]
    assert aligner.held_back
    accepted.add(0)
    assert drain(aligner) == [("clickstream", 0), ("clickstream", 1)]
    assert not aligner.held_back


def test_after_a_revocation_nothing_is_taken_until_the_partition_is_sought_again() -> None:
    # Reassigned: a fetch from the old position (ahead of the committed offset) arrives
    # before the seek to the committed offset; taking it would hand on 422 before 309.
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    aligner.seek(CLICKS, 300)
    aligner.add(CLICKS, recs(CLICKS, 300, *[float(i) for i in range(5)]))
    aligner.forget([CLICKS])
    assert aligner.add(CLICKS, recs(CLICKS, 422, 50.0)) is None
    assert drain(aligner) == []
    aligner.seek(CLICKS, 309)
    aligner.add(CLICKS, recs(CLICKS, 309, 9.0))
    assert drain(aligner) == [("clickstream", 309)]


def test_a_newly_assigned_partition_takes_nothing_before_its_first_seek() -> None:
    # Never owned here before: a fetch ahead of the committed offset (339) must not be
    # taken as where the partition starts, or 339-401 are never handled.
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    engagement = TP("engagement", 2)
    assert aligner.add(engagement, recs(engagement, 402, 9.0)) is None
    assert drain(aligner) == []
    aligner.seek(engagement, 339)
    assert aligner.add(engagement, recs(engagement, 402, 9.0)) == Jump(engagement, 339, 402)
    aligner.add(engagement, recs(engagement, 339, 1.0))
    assert drain(aligner) == [("engagement", 339)]


def test_records_not_taken_before_the_first_seek_make_it_move_the_consumer_back() -> None:
    # aiokafka seeks to the committed offset (261), a fetch in flight from there lands and
    # moves its position to 263, and only then is the aligner told of the seek: 261-262
    # were not taken, and nothing would fetch them again.
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    assert aligner.add(CLICKS, recs(CLICKS, 261, 1.0, 2.0)) is None
    assert aligner.seek(CLICKS, 261) == 261
    aligner.add(CLICKS, recs(CLICKS, 261, 1.0, 2.0))
    assert drain(aligner) == [("clickstream", 261), ("clickstream", 262)]
    assert aligner.seek(CLICKS, 263) is None  # asked once only


def test_without_a_committed_offset_what_was_not_taken_is_read_again_from_the_lowest() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    aligner.add(ORDERS, recs(ORDERS, 5, 1.0))
    aligner.add(ORDERS, recs(ORDERS, 0, 0.5))
    assert aligner.seek(ORDERS, None) == 0  # nothing committed: read from what came first
    aligner.add(ORDERS, recs(ORDERS, 0, 0.5))
    assert drain(aligner) == [("orders", 0)]


def test_records_before_the_committed_offset_need_no_second_seek() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    aligner.add(CLICKS, recs(CLICKS, 100, 1.0))
    assert aligner.seek(CLICKS, 150) is None
    aligner.add(CLICKS, recs(CLICKS, 200, 1.0))
    aligner.forget([CLICKS])  # revoked: what was not taken is the next owner's
    assert aligner.seek(CLICKS, 150) is None


def test_records_handed_out_but_never_added_are_read_again() -> None:
    # A rebalance stopped Faust's getmany mid-batch: the consumer's position is 95, but
    # engagement-2 21-94 never reached the aligner, and nothing later shows the jump.
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    engagement = TP("engagement", 2)
    aligner.seek(engagement, 21)
    assert aligner.check(engagement, 21) is None  # nothing missing
    assert aligner.check(engagement, 95) == 21
    aligner.add(engagement, recs(engagement, 21, 1.0, 2.0))
    assert drain(aligner) == [("engagement", 21), ("engagement", 22)]
    assert aligner.check(engagement, 23) is None


def test_a_position_past_a_hole_is_accepted_after_the_same_gap_comes_back() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    aligner.seek(ORDERS, 10)
    assert [aligner.check(ORDERS, 12) for _ in range(MAX_RESEEKS)] == [10] * MAX_RESEEKS
    assert aligner.check(ORDERS, 12) is None  # a transaction marker: nothing is there
    assert aligner.holes == 1
    aligner.add(ORDERS, recs(ORDERS, 12, 1.0))
    assert drain(aligner) == [("orders", 12)]


def test_positions_of_partitions_not_sought_are_not_judged() -> None:
    aligner = Aligner(INPUTS, max_idle_ms=500, require_seek=True)
    aligner.add(CLICKS, recs(CLICKS, 5, 1.0))
    assert aligner.sought() == []
    assert aligner.check(CLICKS, 50) is None
    aligner.seek(CLICKS, 3)
    assert aligner.sought() == [CLICKS]


def test_a_task_waits_while_a_sought_partitions_end_is_unknown() -> None:
    """After a rebalance, a topic whose end no fetch has told since its seek may still
    hold a customer's first visit: their order waits for it (KIP-695), boundedly."""
    now = [0.0]
    aligner = Aligner(INPUTS, max_idle_ms=500, clock=lambda: now[0])
    aligner.seek(CLICKS, 0)
    aligner.seek(ORDERS, 0)
    aligner.add(ORDERS, recs(ORDERS, 0, 5.0))
    unknown = {CLICKS: UNKNOWN}
    assert drain(aligner, unknown) == []  # clickstream's end is not known yet
    aligner.add(CLICKS, recs(CLICKS, 0, 1.0))  # the fetch brings the visit first
    assert drain(aligner, {CLICKS: 1}) == [("clickstream", 0), ("orders", 0)]

    aligner.add(ORDERS, recs(ORDERS, 1, 6.0))
    assert drain(aligner, {CLICKS: 1}) == [("orders", 1)]  # known and fetched: no wait
    aligner.seek(CLICKS, 1)
    aligner.add(ORDERS, recs(ORDERS, 2, 7.0))
    assert drain(aligner, unknown) == []
    now[0] = 0.6  # no fetch came within max_idle_ms: go on without it
    assert drain(aligner, unknown) == [("orders", 2)]
