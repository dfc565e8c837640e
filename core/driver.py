"""The one event-time driver of the core: customer states, their timers, and a clock.

In the spirit of Flink's ``ProcessFunctionTestHarnesses``: one driver, used by
``kairos replay`` and by the tests, so they cannot drift apart. ``send`` an
event (every timer due by its time fires first, in due order, each with the
clock at its due time), ``advance`` the clock to a time (what is due by then
fires), and read what came out through the sink (:class:`Outputs` keeps it all).

    outputs = Outputs()
    driver = Driver(cfg, outputs)
    driver.send(cart_added)                       # at cart_added.ts
    driver.advance(cart_added.ts + 30 * MINUTE)   # the cart's deadline fires
    outputs.decisions                             # [abandoned_cart decision]

The live worker keeps its states in its own store and its timers per partition;
it fires them with the same :meth:`Timers.fire`, so the rule for a stale timer
and the order of firing are written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush

from core.config import Config
from core.engine import on_event, on_profile, on_timer
from core.model import (
    Conversion,
    CustomerState,
    Decision,
    Event,
    Profile,
    SegmentChange,
    StageChange,
    Step,
    TimerChange,
)

Sink = Callable[[Step], object]
"""Takes a step that produced something (a decision, stage change, conversion or timer)."""

Fired = Callable[[Step, str, int], object]
"""Takes a fired timer's step, its kind and its due time (after its new timers are queued)."""

StateOf = Callable[[str], CustomerState]
"""The state of a customer that has a queued timer."""


class Timers:
    """Pending deadlines, earliest first: a heap of ``(due, customer_id, kind)``.

    The customer's state is the truth (``CustomerState.timers``); an entry only
    says when to look. An entry whose due no longer matches the state was
    cancelled or superseded, and :meth:`fire` skips it: nothing is searched to
    cancel, nothing fires twice, and a deadline pushed back costs one entry.
    """

    __slots__ = ("heap",)

    def __init__(self) -> None:
        self.heap: list[tuple[int, str, str]] = []

    def schedule(self, changes: Iterable[TimerChange]) -> None:
        """Queue every timer ``changes`` sets (a cancel needs no entry: see the class)."""
        heap = self.heap
        for change in changes:
            if change.due is not None:
                heappush(heap, (change.due, change.customer_id, change.kind))

    def rebuild(self, entries: Iterable[tuple[int, str, str]]) -> None:
        """Queue exactly ``entries``, ``(due, customer_id, kind)``: the timers states hold."""
        heap = self.heap  # the same list: a caller may hold it (``Driver.send`` does)
        heap[:] = entries
        heapify(heap)

    def next_due(self) -> int | None:
        """When the earliest entry is due (it may be stale), or None when none is queued."""
        return self.heap[0][0] if self.heap else None

    def __len__(self) -> int:
        return len(self.heap)

    def fire(
        self,
        until: int,
        state_of: StateOf,
        cfg: Config,
        fired: Fired,
        now: int | None = None,
        limit: int | None = None,
    ) -> int:
        """Fire every timer due at or before ``until``, in due order; returns how many fired.

        ``now`` is the clock the core sees: by default each timer's own due time
        (event time: replay, the tests), or one time for all (the live worker's
        wall clock). A timer that re-arms due by ``until`` fires in the same call.
        With ``limit``, at most that many entries are taken (stale ones count), so
        a caller can yield between slices of a burst; the rest stay queued.
        """
        heap = self.heap
        n = 0
        while heap and heap[0][0] <= until:
            if limit is not None:
                if limit <= 0:
                    break
                limit -= 1
            due, customer_id, kind = heappop(heap)
            state = state_of(customer_id)
            if state.timers.get(kind) != due:
                continue  # cancelled or superseded
            step = on_timer(state, kind, due, due if now is None else now, cfg)
            if step.timers:
                self.schedule(step.timers)
            n += 1
            fired(step, kind, due)
        return n

    def fire_own(
        self, state: CustomerState, until: int, cfg: Config, fired: Fired, now: int
    ) -> int:
        """Fire ``state``'s own timers due at or before ``until``, in due order; returns how many.

        The live worker calls this before a customer's event, so their deadlines always
        fire before anything later of theirs is applied, as in replay, even while the
        rest of a burst of due timers still waits for its slice. A fired timer's queue
        entry becomes stale (:meth:`fire` skips it); the timers it sets are queued.
        """
        timers = state.timers
        n = 0
        while timers:
            kind, due = min(timers.items(), key=_due_then_kind)
            if due > until:
                break
            step = on_timer(state, kind, due, now, cfg)
            if step.timers:
                self.schedule(step.timers)
            n += 1
            fired(step, kind, due)
        return n


def _due_then_kind(item: tuple[str, int]) -> tuple[int, str]:
    """The queue's order among one customer's timers: ``(due, customer_id, kind)``."""
    return item[1], item[0]


class Driver:
    """Customer states and their timers around ``core.engine``, on an event-time clock.

    ``sink`` is called with every step that produced something, in the order the
    core produced them. Customers are created on their first event or profile.
    """

    __slots__ = ("cfg", "sink", "states", "timers", "timers_fired")

    def __init__(
        self, cfg: Config, sink: Sink, states: dict[str, CustomerState] | None = None
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        # A caller's mapping may stand in (a test's that round-trips every read).
        self.states: dict[str, CustomerState] = {} if states is None else states
        self.timers = Timers()
        self.timers_fired = 0

    def send(self, ev: Event) -> Step:
        """Fire every timer due by ``ev.ts``, then apply ``ev`` with the clock at ``ev.ts``.

        Returns the event's step (``duplicate``, ``late`` and ``merges`` are read there).
        """
        t = ev.ts
        heap = self.timers.heap
        if heap and heap[0][0] <= t:
            self.advance(t)
        customer_id = ev.customer_id
        state = self.states.get(customer_id)
        if state is None:
            state = self.states[customer_id] = CustomerState(customer_id)
        step = on_event(state, ev, t, self.cfg)
        if (
            step.timers
            or step.decisions
            or step.stage_changes
            or step.conversions
            or step.segment_changes
        ):
            for change in step.timers:  # ``Timers.schedule``, inline: the per-event path
                if change.due is not None:
                    heappush(heap, (change.due, change.customer_id, change.kind))
            self.sink(step)
        return step

    def advance(self, t: int) -> int:
        """Run the clock to ``t``: fire every timer due by then; returns how many fired."""
        n = self.timers.fire(t, self.states.__getitem__, self.cfg, self._fired)
        self.timers_fired += n
        return n

    def profile(self, customer_id: str, profile: Profile | None, at: int | None = None) -> None:
        """Join a customer's latest profile (``None`` forgets their personal data).

        With ``at`` (event time), the triggers that follow profiles run at that time.
        """
        if at is None:
            on_profile(self.state(customer_id), profile)
            return
        step = on_profile(self.state(customer_id), profile, at, self.cfg)
        if step.timers or step.decisions:
            self.timers.schedule(step.timers)
            self.sink(step)

    def state(self, customer_id: str) -> CustomerState:
        """The customer's state, a new one if they were never seen."""
        state = self.states.get(customer_id)
        if state is None:
            state = self.states[customer_id] = CustomerState(customer_id)
        return state

    def restart(self) -> None:
        """Queue the timers from the states alone, as a worker does after recovery."""
        states = self.states.values()
        self.timers.rebuild(
            (due, s.customer_id, kind) for s in states for kind, due in s.timers.items()
        )

    def _fired(self, step: Step, kind: str, due: int) -> None:
        if (
            step.timers
            or step.decisions
            or step.stage_changes
            or step.conversions
            or step.segment_changes
        ):
            self.sink(step)


@dataclass(slots=True)
class Outputs:
    """Everything steps produced, in order: the test double of the worker's output topics."""

    decisions: list[Decision] = field(default_factory=list)
    stage_changes: list[StageChange] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    timers: list[TimerChange] = field(default_factory=list)
    segment_changes: list[SegmentChange] = field(default_factory=list)

    def __call__(self, step: Step) -> None:
        self.decisions.extend(step.decisions)
        self.stage_changes.extend(step.stage_changes)
        self.conversions.extend(step.conversions)
        self.timers.extend(step.timers)
        self.segment_changes.extend(step.segment_changes)
