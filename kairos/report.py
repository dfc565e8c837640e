"""``kairos report``: each trigger's effect, read from the ``actions`` and ``conversions`` topics.

Reads both topics from the beginning to their current end, with no consumer group, and
prints per trigger: decisions, sent, held out, conversions and revenue of both groups,
conversion rates, the absolute uplift (rate sent minus rate held out) with its 95%
confidence interval (``core.effect``), and revenue per decision. Actions and
conversions are counted once per ``action_id`` (a replayed decision repeats its id).

Below the table, per trigger with a holdout or variants: cost, ROI and the uplift
with its always-valid interval and verdict, and each variant against its own
held-out customers and against the first variant, the same figures
``kairos replay`` shows (``--config`` gives the message costs and variant order).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from core.config import Config
from core.effect import Effect
from core.model import Conversion, Decision
from kairos import inputs
from kairos.arguments import number
from kairos.errors import UserError
from kairos.experiment_text import experiment_lines, first_variants
from stream import topics


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--bootstrap", help="Kafka host:port (default: from $BROKER_URL)")
    parser.add_argument(
        "--timeout", type=number(0, 3600, above=True), default=30.0, help="give up after seconds"
    )
    parser.add_argument(
        "--config",
        help="trigger config file, for message costs and variant order (default: built-in)",
    )
    parser.add_argument(
        "--allocate",
        type=number(0, 0.5),
        metavar="FLOOR",
        help="print the next Thompson-sampling weights of each trigger's variants, none below "
        "FLOOR (e.g. 0.1), as `kairos triggers set` commands (needs --config; kairos/allocate.py)",
    )
    parser.add_argument("--apply", action="store_true", help="with --allocate: set them live")
    parser.add_argument("--redis", help="with --apply: Redis URL (default: $REDIS_URL)")


async def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every JSON record of ``topic`` from its beginning to the end offsets seen at start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from stream.security import kafka_client_kwargs

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **kafka_client_kwargs(),
    )
    records: list[dict[str, Any] | None] = []
    try:
        await consumer.start()
        await consumer.topics()  # loads the cluster metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # The end is the high watermark of fetch answers: some Kafka-compatible brokers
        # (Tansu) answer ListOffsets(latest) wrongly, which end_offsets() relies on.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for messages in batches.values():
                records.extend(decoded(m.value) for m in messages)
            marks = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if not batches and all(
                hw is not None and pos >= hw for hw, pos in zip(marks, positions, strict=True)
            ):
                break
    finally:
        await consumer.stop()
    return [r for r in records if r is not None]


def decoded(value: bytes | None) -> dict[str, Any] | None:
    """A record's JSON object, or None for anything else (the report skips it)."""
    try:
        record = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def tally(actions: list[dict[str, Any]], conversions: list[dict[str, Any]]) -> dict[str, Effect]:
    effects: dict[str, Effect] = {}
    seen: set[str] = set()
    for a in actions:
        if a.get("action_id") in seen or not a.get("trigger"):
            continue
        seen.add(a["action_id"])
        decision = Decision(
            a["action_id"],
            a["trigger"],
            a.get("customer_id", ""),
            a.get("channel", ""),
            int(a.get("decided_at") or 0),
            a.get("status", ""),
            a.get("reason", ""),
            a.get("payload") or {},
            tuple(a.get("source_event_ids") or ()),
            0,
            a.get("variant") if isinstance(a.get("variant"), str) else None,
            float(a.get("variant_share") or 0.0),
        )
        effects.setdefault(decision.trigger, Effect()).decided(decision)
    converted: set[str] = set()
    for c in conversions:
        if c.get("action_id") in converted or not c.get("trigger"):
            continue
        converted.add(c.get("action_id", ""))
        conversion = Conversion(
            c["trigger"],
            c.get("group", "sent"),
            c.get("action_id", ""),
            c.get("customer_id", ""),
            c.get("order_id"),
            float(c.get("revenue") or 0.0),
            int(c.get("at") or 0),
            c.get("variant") if isinstance(c.get("variant"), str) else None,
            float(c.get("discount") or 0.0),
            float(c.get("variant_share") or 0.0),
        )
        effects.setdefault(conversion.trigger, Effect()).converted(conversion)
    return effects


def rows(effects: dict[str, Effect], cfg: Config | None = None) -> dict[str, dict[str, Any]]:
    """Per trigger: ``Effect.summary()`` plus conversion rates and revenue per decision."""
    out = {}
    first = first_variants(cfg)
    costs = cfg.costs if cfg is not None else None
    for trigger, e in sorted(effects.items()):
        row = e.summary(costs, first.get(trigger))
        row["rate_sent"] = round(e.conversions_sent / e.sent, 6) if e.sent else None
        row["rate_held_out"] = round(e.conversions_held_out / e.held_out, 6) if e.held_out else None
        revenue = e.revenue_sent + e.revenue_held_out
        row["revenue_per_decision"] = round(revenue / e.decisions, 2) if e.decisions else None
        out[trigger] = row
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def format_table(report: dict[str, dict[str, Any]]) -> str:
    if not report:
        return "no decisions yet"
    head = (
        f"{'trigger':<20} {'decided':>7} {'sent':>6} {'held':>6} {'conv s/h':>9} "
        f"{'rate sent':>9} {'rate held':>9} {'uplift [95% CI]':>26} {'revenue s/h':>19} "
        f"{'rev/dec':>8}"
    )
    lines = [head, "-" * len(head)]
    for trigger, r in report.items():
        ci = r["ci95"]
        uplift = "-" if r["uplift"] is None else f"{r['uplift'] * 100:+.1f}pp"
        if ci:
            uplift += f" [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"
        conv = f"{r['conversions_sent']}/{r['conversions_held_out']}"
        revenue = f"{r['revenue_sent']:.2f}/{r['revenue_held_out']:.2f}"
        per_decision = "-" if r["revenue_per_decision"] is None else f"{r['revenue_per_decision']}"
        lines.append(
            f"{trigger:<20} {r['decisions']:>7} {r['sent']:>6} {r['held_out']:>6} {conv:>9} "
            f"{_pct(r['rate_sent']):>9} {_pct(r['rate_held_out']):>9} {uplift:>26} "
            f"{revenue:>19} {per_decision:>8}"
        )
    experiments = [t for t, r in report.items() if r.get("variants") or r["held_out"]]
    if experiments:
        lines += ["", "experiments (intervals valid however often they are read):"]
        for trigger in experiments:
            lines.extend("  " + line for line in experiment_lines(trigger, report[trigger]))
    return "\n".join(lines)


# trigger -> the payload field its decisions are broken down by (audiences and leads)
BREAKDOWNS = {
    "lead_qualified": "owner",
    "segment_entered": "audience",
    "segment_exited": "audience",
}


def breakdown(actions: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Decisions of the audience and lead triggers by owner / audience, each action once."""
    out: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for a in actions:
        field = BREAKDOWNS.get(a.get("trigger") or "")
        if field is None or a.get("action_id") in seen:
            continue
        seen.add(a.get("action_id") or "")
        value = str((a.get("payload") or {}).get(field) or "(none)")
        counts = out.setdefault(f"{a['trigger']} by {field}", {})
        counts[value] = counts.get(value, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def format_breakdown(parts: dict[str, dict[str, int]]) -> str:
    return "\n".join(
        f"{title}: " + ", ".join(f"{name} {n}" for name, n in counts.items())
        for title, counts in parts.items()
    )


async def build_report(
    bootstrap: str, timeout: float = 30.0, cfg: Config | None = None
) -> dict[str, dict[str, Any]]:
    report, _ = await build_report_and_breakdown(bootstrap, timeout, cfg)
    return report


async def build_report_and_breakdown(
    bootstrap: str, timeout: float = 30.0, cfg: Config | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int]]]:
    actions, conversions = await asyncio.gather(
        read_topic(bootstrap, topics.ACTIONS, timeout),
        read_topic(bootstrap, topics.CONVERSIONS, timeout),
    )
    return rows(tally(actions, conversions), cfg), breakdown(actions)


def run(args: argparse.Namespace) -> int:
    if args.apply and args.allocate is None:
        raise UserError("--apply sets what --allocate computes: give --allocate FLOOR too")
    if args.allocate is not None and not args.config:
        raise UserError("--allocate needs the config whose variants it weighs: give --config")
    cfg = inputs.campaign_config(args.config) if args.config else None
    broker = inputs.broker(args.bootstrap)
    with inputs.reaching("Kafka broker", broker):
        report, parts = asyncio.run(build_report_and_breakdown(broker.value, args.timeout, cfg))
    if args.allocate is not None and cfg is not None:
        from kairos import allocate

        return allocate.run(report, cfg, args)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_table(report))
        if parts:
            print(format_breakdown(parts))
    return 0
