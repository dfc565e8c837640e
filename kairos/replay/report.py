"""What a replay prints: the human summary, the ``--json`` object and a config comparison."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from core.config import Config
from core.durations import format_duration, iso, parse_duration
from core.model import STAGES
from kairos.experiment_text import experiment_lines, first_variants
from kairos.replay.loop import Result

_SAMPLE_IDS = 5  # customers named per trigger in a comparison


def compare(old: Result, new: Result) -> dict[str, Any]:
    """Per trigger: decisions before and after, and the customers whose count changed."""
    out: dict[str, Any] = {}
    for trigger in sorted(set(old.per_customer) | set(new.per_customer)):
        before = old.per_customer.get(trigger, Counter())
        after = new.per_customer.get(trigger, Counter())
        changed = sorted(c for c in set(before) | set(after) if before[c] != after[c])
        out[trigger] = {
            "before": sum(before.values()),
            "after": sum(after.values()),
            "customers_changed": len(changed),
            "sample": changed[:_SAMPLE_IDS],
        }
    return out


def summary(result: Result, cfg: Config | None = None) -> dict[str, Any]:
    """The ``--json`` object; ``cfg`` gives message costs and each trigger's first variant."""
    first = first_variants(cfg)
    costs = cfg.costs if cfg is not None else None
    return {
        "events": result.events,
        "invalid": result.invalid,
        "seconds": round(result.seconds, 3),
        "events_per_s": round(result.events_per_s),
        "fired": {t: sum(c.values()) for t, c in sorted(result.fired.items())},
        "stages": {s: result.stages.get(s, 0) for s in STAGES},
        "effect": {t: e.summary(costs, first.get(t)) for t, e in sorted(result.effect.items())},
        "last_event": result.last_event,
        "clock": result.clock,
        "timers_fired": result.timers_fired,
        "pending": {
            kind: {"count": count, "next_due": due}
            for kind, (count, due) in sorted(result.pending.items())
        },
        **_population(result),
    }


def _population(result: Result) -> dict[str, Any]:
    """Audience sizes, RFM segments and MQLs per owner, when the replay has them."""
    out: dict[str, Any] = {}
    if result.population.audiences:
        out["audiences"] = dict(result.population.audiences)
    if result.population.rfm:
        out["rfm_segments"] = dict(result.population.rfm.most_common())
    if result.owners:
        out["mqls_by_owner"] = dict(sorted(result.owners.items()))
    return out


def human(result: Result, comparison: dict[str, Any] | None, cfg: Config | None = None) -> str:
    """The summary a person reads (without ``--json``)."""
    lines = [
        f"replayed {result.events:,} events ({result.invalid:,} invalid) in "
        f"{result.seconds:.2f}s: {result.events_per_s:,.0f} events/s, "
        f"{result.timers_fired:,} timers fired"
    ]
    lines.extend(invalid_lines(result.errors, result.invalid))
    lines.extend(_pending_lines(result))
    lines.append("decisions by trigger:")
    if not result.fired:
        lines.append("  (none)")
    for trigger, counts in sorted(result.fired.items()):
        by_status = ", ".join(f"{s} {n:,}" for s, n in counts.most_common())
        lines.append(f"  {trigger:<20} {sum(counts.values()):>9,}  ({by_status})")
    for d in result.samples:
        lines.append(f"sample: {d.trigger} for {d.customer_id} via {d.channel}: {d.reason}")
        lines.append(f"        payload {orjson.dumps(d.payload).decode()}")
    lines.append("customers by stage at the end:")
    lines.append("  " + ", ".join(f"{s} {result.stages.get(s, 0):,}" for s in STAGES))
    lines.extend(_population_lines(result))
    measured = {t: e.summary() for t, e in sorted(result.effect.items()) if e.held_out}
    if measured:
        lines.append("effect (conversion rate sent - held out, 95% CI):")
        for trigger, s in measured.items():
            ci = s["ci95"]
            lines.append(
                f"  {trigger:<20} sent {s['sent']:,} ({s['conversions_sent']:,} converted), "
                f"held out {s['held_out']:,} ({s['conversions_held_out']:,}): uplift "
                f"{s['uplift']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]"
            )
    first = first_variants(cfg)
    costs = cfg.costs if cfg is not None else None
    experiments = {
        t: e.summary(costs, first.get(t))
        for t, e in sorted(result.effect.items())
        if e.variants or e.held_out
    }
    if experiments:
        lines.append("experiments (intervals valid however often they are read):")
        for trigger, s in experiments.items():
            lines.extend("  " + line for line in experiment_lines(trigger, s))
    if comparison is not None:
        lines.append("compare (old config -> new config):")
        for trigger, c in comparison.items():
            sample = ", ".join(c["sample"])
            lines.append(
                f"  {trigger:<20} {c['before']:>9,} -> {c['after']:<9,} "
                f"{c['customers_changed']:,} customers change"
                + (f" (e.g. {sample})" if sample else "")
            )
    return "\n".join(lines)


def _population_lines(result: Result) -> list[str]:
    people = _population(result)
    lines = []
    if "audiences" in people:
        lines.append("customers per audience at the end:")
        lines.extend(f"  {name:<24} {n:>9,}" for name, n in people["audiences"].items())
    if "rfm_segments" in people:
        lines.append("customers per RFM segment at the end:")
        lines.append("  " + ", ".join(f"{s} {n:,}" for s, n in people["rfm_segments"].items()))
    if "mqls_by_owner" in people:
        lines.append("MQLs by owner (lead_qualified):")
        lines.append("  " + ", ".join(f"{o} {n:,}" for o, n in people["mqls_by_owner"].items()))
    return lines


def invalid_lines(errors: list[str], invalid: int) -> list[str]:
    """The first invalid lines ("file:line: reason") and how many there were in all."""
    if not invalid:
        return []
    shown = f"; the first {len(errors)}" if invalid > len(errors) else ""
    return [f"invalid lines ({invalid:,}{shown}):", *(f"  {e}" for e in errors)]


def _journey_note() -> str:
    """The triggers that act when a customer goes at_risk or churned (their declarations)."""
    from core.triggers import SPECS

    names = [name for name, spec in SPECS.items() if spec.stages & {"at_risk", "churned"}]
    return f"  (stage at_risk / churned: {', '.join(names)})"


def _pending_lines(result: Result) -> list[str]:
    if not result.clock:
        return []
    ran = ""
    if result.clock != result.last_event:
        ran = f", {format_duration(result.clock - result.last_event)} past the last event"
    if not result.pending:
        return [f"clock ended at {iso(result.clock)}{ran}; no deadlines pending"]
    lines = [f"clock ended at {iso(result.clock)}{ran}; deadlines still pending:"]
    for kind, (count, due) in sorted(result.pending.items()):
        note = _journey_note() if kind == "journey" else ""
        lines.append(f"  {kind:<24} {count:>9,}  first due {iso(due)}{note}")
    first = min(due for _, due in result.pending.values())
    lines.append(
        f"  (run the clock on with --until +DURATION, e.g. --until "
        f"+{_round_up(first - result.clock)} fires the first)"
    )
    return lines


_STEPS = ("1m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d", "2d", "3d", "7d")
_ROUND = tuple(parse_duration(step) for step in (*_STEPS, "14d", "30d", "90d"))


def _round_up(ms: int) -> str:
    """A duration a person would type that reaches at least ``ms``: 29m31s -> 30m."""
    for step in _ROUND:
        if ms <= step:
            return format_duration(step)
    return format_duration(-(-ms // 86_400_000) * 86_400_000)
