"""The replay loop: decoded events through the core's event-time driver, tallied.

``core.driver.Driver`` fires every timer due by an event's time before the event,
in due order, each with the clock at its due time. Profiles apply at their time:
after the timers due by then, before the event. The clock ends at the last
event's time, or later with ``Until``; deadlines still pending are counted per timer.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core import recommend
from core.config import Config
from core.driver import Driver
from core.durations import format_duration, iso
from core.effect import Effect
from core.model import CustomerState, Decision, Step
from kairos.replay.customers import Population, population
from kairos.replay.lines import Loaded, no_gc

SAMPLES = 2  # decisions with status ``send`` shown as samples


@dataclass(frozen=True, slots=True)
class Until:
    """Where ``--until`` stops the clock: at a time, or a duration after the last event."""

    at: int | None = None
    after: int | None = None

    def clock(self, last: int) -> int:
        if self.after is not None:
            return last + self.after
        return max(last, self.at or 0)

    def __str__(self) -> str:
        return f"+{format_duration(self.after)}" if self.after is not None else iso(self.at or 0)


@dataclass(slots=True)
class Result:
    """What one replay produced."""

    events: int
    invalid: int
    seconds: float
    fired: dict[str, Counter[str]]  # trigger -> status -> decisions
    stages: Counter[str]
    effect: dict[str, Effect]
    samples: list[Decision]
    decisions: list[Decision] | None  # every decision, when asked for
    per_customer: dict[str, Counter[str]]  # trigger -> customer_id -> decisions
    timers_fired: int = 0
    errors: list[str] = field(default_factory=list)
    misrouted: int = 0  # customers found in the wrong shard (see ``kairos.replay.shards``)
    last_event: int = 0  # time of the last event
    clock: int = 0  # where the clock stopped: the last event, or later with ``until``
    pending: dict[str, list[int]] = field(default_factory=dict)  # timer -> [count, next due]
    # audiences, RFM segments and customer lines at the end (kairos.replay.customers)
    population: Population = field(default_factory=Population)
    owners: Counter[str] = field(default_factory=Counter)  # lead_qualified decisions by owner

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Tally:
    """The driver's sink in a replay: decisions counted per trigger, status and customer."""

    __slots__ = ("decisions", "effect", "fired", "owners", "per_customer", "samples")

    def __init__(self, keep_decisions: bool) -> None:
        self.fired: dict[str, Counter[str]] = {}
        self.effect: dict[str, Effect] = {}
        self.per_customer: dict[str, Counter[str]] = {}
        self.samples: list[Decision] = []
        self.decisions: list[Decision] | None = [] if keep_decisions else None
        self.owners: Counter[str] = Counter()

    def add(self, step: Step) -> None:
        """Count a step's decisions and conversions (the driver's sink)."""
        for d in step.decisions:
            trigger = d.trigger
            counts = self.fired.get(trigger)
            if counts is None:
                counts = self.fired[trigger] = Counter()
                self.effect[trigger] = Effect()
                self.per_customer[trigger] = Counter()
            counts[d.status] += 1
            self.effect[trigger].decided(d)
            self.per_customer[trigger][d.customer_id] += 1
            if self.decisions is not None:
                self.decisions.append(d)
            if len(self.samples) < SAMPLES and d.status == "send":
                self.samples.append(d)
            if trigger == "lead_qualified":
                self.owners[d.payload.get("owner") or "(none)"] += 1
        for c in step.conversions:
            eff = self.effect.get(c.trigger)
            if eff is None:
                eff = self.effect[c.trigger] = Effect()
            eff.converted(c)


def replay(
    loaded: Loaded,
    cfg: Config,
    *,
    keep_decisions: bool = False,
    end: Callable[[int], int] | None = None,
    until: Until | None = None,
    keep_customers: bool = False,
    keep: list[object] | None = None,
) -> Result:
    """Run the core over ``loaded`` on event time; see the module docstring.

    The clock ends at the last event's time (``end``, for shards, maps this
    replay's last event time to the last over every shard), or where ``until`` says.
    With ``recommend.enabled``, one model learns from every event in this process.
    ``keep`` gets the driver (states, timers): a forked shard that exits right after sending
    its result keeps them rather than free hundreds of thousands of objects first.
    """
    if cfg.recommend.enabled:
        model = recommend.Model(cfg.recommend)
        with recommend.using(model, model.learn):
            return _replay(loaded, cfg, keep_decisions, end, until, keep_customers, keep)
    return _replay(loaded, cfg, keep_decisions, end, until, keep_customers, keep)


def _replay(
    loaded: Loaded,
    cfg: Config,
    keep_decisions: bool,
    end: Callable[[int], int] | None,
    until: Until | None,
    keep_customers: bool,
    keep: list[object] | None,
) -> Result:
    started = time.perf_counter()
    tally = Tally(keep_decisions)
    driver = Driver(cfg, tally.add)
    send = driver.send
    profiles = loaded.profiles
    next_profile = 0
    # Time of the next profile record to apply: one comparison per event instead of three.
    profile_at = profiles[0].at if profiles else None
    with no_gc():
        for ev in loaded.events:
            if profile_at is not None and profile_at <= ev.ts:
                t = ev.ts
                driver.advance(t)  # the timers due by then come first, as for the event
                while next_profile < len(profiles) and profiles[next_profile].at <= t:
                    _, customer_id, profile = profiles[next_profile]
                    next_profile += 1
                    driver.profile(customer_id, profile, t)  # the clock: `at` may be 0
                profile_at = profiles[next_profile].at if next_profile < len(profiles) else None
            send(ev)
        last = loaded.events[-1].ts if loaded.events else 0
        if end is not None:
            last = end(last)
        clock = until.clock(last) if until is not None and last else last
        if clock:
            driver.advance(clock)
        stages = Counter(state.stage for state in driver.states.values())
        people = population(driver.states.values(), clock, cfg, keep_customers)
    if keep is not None:
        keep.append(driver)
    return Result(
        events=len(loaded.events),
        invalid=loaded.invalid,
        seconds=loaded.seconds + time.perf_counter() - started,
        fired=tally.fired,
        stages=stages,
        effect=tally.effect,
        samples=tally.samples,
        decisions=tally.decisions,
        per_customer=tally.per_customer,
        timers_fired=driver.timers_fired,
        errors=list(loaded.errors),  # a merge of shards extends it
        last_event=last,
        clock=clock,
        pending=_pending(driver.states.values()),
        population=people,
        owners=tally.owners,
    )


def _pending(states: Iterable[CustomerState]) -> dict[str, list[int]]:
    """Deadlines not yet due at the end: per timer, how many and the first one due."""
    pending: dict[str, list[int]] = {}
    for state in states:
        for kind, due in state.timers.items():
            entry = pending.get(kind)
            if entry is None:
                pending[kind] = [1, due]
            else:
                entry[0] += 1
                entry[1] = min(entry[1], due)
    return pending
