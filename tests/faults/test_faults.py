"""Short fault scenarios on real processes: nothing lost, nothing sent twice, live == replay.

Each test runs one scenario of ``scenarios.py`` at the ``SHORT`` scale (300 customers
over 20 s; about 40 s a test when the run is clean, a minute more when messages are
missing, since the run waits for them) and checks the counts. The full-scale versions,
and the scenarios too long for ``make test``, run in ``make soak``. Counts and evidence
(which action_ids, which input offsets) are in ``var/faults/short/<scenario>.json``, the
processes' logs and everything observed under ``var/faults/short/logs/<scenario>/``.
"""

from __future__ import annotations

import json

import pytest

from .counting import Counts
from .harness import VAR
from .run import run
from .scenarios import SHORT, Scenario, baseline, broker_cut, dispatcher_kill, poison, worker_kill

pytestmark = [pytest.mark.integration, pytest.mark.faults]
OUT = VAR / "short"


async def run_short(scenario: Scenario) -> Counts:
    return await run(scenario, OUT)


def assert_clean(counts: Counts) -> None:
    """0 lost, 0 duplicated effects at the receiver, and live decisions equal to replay's.

    A copy sent again because the dispatcher was killed before it recorded the answer is
    at-least-once delivery to an idempotent receiver (the ``action_id`` header), not a
    duplicated effect; it is counted (``duplicated_after_kill``), not failed.
    """
    evidence = f"(evidence in {OUT / counts.scenario}.json)\n"
    assert counts.lost == 0, (
        f"{counts.lost} expected messages never arrived {evidence}"
        f"{json.dumps(counts.lost_sample[:5], indent=1)}"
    )
    assert counts.duplicated_unexplained == 0, (
        f"{counts.duplicated_unexplained} action_ids arrived more than once, not explained by "
        f"a dispatcher kill between the copies: {counts.duplicated_sample[:5]}"
    )
    differences = counts.decisions_missing + counts.decisions_extra + counts.status_mismatches
    assert differences == 0, (
        f"live decisions differ from replay: {counts.decisions_missing} missing, "
        f"{counts.decisions_extra} extra, {counts.status_mismatches} other status "
        f"{evidence}missing: "
        f"{json.dumps(counts.missing_sample[:3], indent=1)}\nextra: "
        f"{json.dumps(counts.extra_sample[:3], indent=1)}\nstatus: {counts.status_sample[:3]}"
    )
    assert counts.unexpected_arrivals == 0, "messages arrived that replay did not decide"
    assert (counts.dead_but_arrived, counts.delivered_not_arrived) == (0, 0), (
        f"deliveries disagrees with the receiver: {counts.dead_but_arrived} recorded dead or "
        f"failed but arrived, {counts.delivered_not_arrived} recorded delivered but never arrived"
    )
    assert counts.bad_signatures == 0, "the receiver got requests with a bad signature"
    assert counts.unexpected_exits == {}, f"processes died on their own: {counts.unexpected_exits}"
    assert counts.replay_clock_past_end, "kairos replay could not run its clock past the end"


async def test_without_faults_every_decision_arrives_exactly_once() -> None:
    counts = await run_short(baseline(SHORT))
    assert counts.expected_sends > 0 and counts.events > 0
    assert_clean(counts)


async def test_a_worker_killed_and_restarted_while_another_runs_loses_nothing() -> None:
    assert_clean(await run_short(worker_kill(SHORT)))


async def test_a_dispatcher_killed_mid_burst_with_a_slow_receiver_loses_nothing() -> None:
    assert_clean(await run_short(dispatcher_kill(SHORT)))


async def test_poison_records_become_dead_letters_and_change_nothing_else() -> None:
    counts = await run_short(poison(SHORT))
    assert counts.dead_letters_missing == 0, counts.dead_letters_missing_sample
    assert counts.dead_letters_unexpected == 0
    assert counts.dead_letters == counts.dead_letters_expected > 10
    assert_clean(counts)


async def test_a_broker_cut_of_10_s_loses_nothing() -> None:
    assert_clean(await run_short(broker_cut(SHORT, outage_s=10)))
