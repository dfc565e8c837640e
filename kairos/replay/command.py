"""``kairos replay``'s command line: its arguments, the checks on them, and what it writes."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from datetime import datetime

import orjson

from core.config import Config
from core.durations import iso, parse_duration
from kairos import arguments
from kairos.errors import UserError
from kairos.inputs import campaign_config, readable_file, writable_file
from kairos.replay.loop import Until
from kairos.replay.report import compare, human, invalid_lines, summary
from kairos.replay.shards import run_replay


def parse_until(text: str) -> Until:
    """``+1h`` (after the last event), ``2026-01-08T12:00:00Z`` or epoch milliseconds."""
    text = text.strip()
    try:
        if text.startswith("+"):
            return Until(after=parse_duration(text[1:]))
        if text.isdigit():
            return Until(at=int(text))
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected +DURATION (like +1h or +7d) or a time like 2026-01-08T12:00:00Z, "
            f"got {text!r}" + (f" ({exc})" if text.startswith("+") else "")
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected a time with a UTC offset (like 2026-01-08T12:00:00Z), got {text!r}"
        )
    return Until(at=int(moment.timestamp() * 1000))


def configure(parser: argparse.ArgumentParser) -> None:
    """``kairos replay``'s arguments."""
    parser.add_argument("files", nargs="+", metavar="EVENTS.jsonl", help="JSON-lines event files")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="trigger config file (default: the built-in defaults, not config/triggers.yaml)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--decisions-out",
        metavar="PATH",
        help="write every decision as one JSON line, shaped like an actions record",
    )
    parser.add_argument(
        "--customers-out",
        metavar="PATH",
        help="write one JSON line per customer at the end: stage, audiences, tags, scores",
    )
    parser.add_argument(
        "--jobs",
        type=arguments.count(1, 64),
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="processes to use, customers split between them (default: %(default)s)",
    )
    parser.add_argument(
        "--until",
        type=parse_until,
        metavar="TIME|+DURATION",
        help="run the clock on past the last event: +1h, +7d, or a time like "
        "2026-01-08T12:00:00Z (timers due by then fire)",
    )
    parser.add_argument(
        "--compare",
        metavar="OLD_CONFIG",
        help="also replay with this (old) config and show what changes per trigger",
    )


def run(args: argparse.Namespace) -> int:
    """Replay the files, refuse what the result makes wrong (``--until`` too early), print."""
    gc.disable()  # a batch command: its records live until it exits (see ``lines.no_gc``)
    for path in args.files:
        readable_file(path, "event file")
    cfg = campaign_config(args.config) if args.config else Config()
    old_cfg = campaign_config(args.compare) if args.compare else None
    if args.decisions_out:
        writable_file(args.decisions_out, "decisions file")
    if args.customers_out:
        writable_file(args.customers_out, "customers file")
    cfgs = [cfg] if old_cfg is None else [cfg, old_cfg]
    results = run_replay(
        args.files,
        cfgs,
        jobs=args.jobs,
        keep_decisions=bool(args.decisions_out),
        until=args.until,
        keep_customers=bool(args.customers_out),
    )
    result = results[0]
    if not result.events:
        for line in invalid_lines(result.errors, result.invalid):
            print(line, file=sys.stderr)
        files = ", ".join(args.files)
        if result.invalid:
            raise UserError(
                f"no valid event in {files}: {result.invalid:,} invalid line(s), the first "
                "shown above",
                code=1,
            )
        raise UserError(f"no events in {files}: nothing to replay", code=1)
    until = args.until
    if until is not None and until.at is not None and until.at < result.last_event:
        raise UserError(
            f"--until {until} is before the last event ({iso(result.last_event)}); it runs the "
            "clock on past the end: give a later time or +DURATION"
        )
    comparison = compare(results[1], result) if old_cfg is not None else None
    if args.decisions_out:
        with open(args.decisions_out, "wb") as out:
            for d in result.decisions or ():
                out.write(orjson.dumps(d.to_record()) + b"\n")
    if args.customers_out:
        with open(args.customers_out, "wb") as out:
            people = sorted(result.population.customers or (), key=lambda c: c["customer_id"])
            for customer in people:
                out.write(orjson.dumps(customer) + b"\n")
    if args.json:
        obj = summary(result, cfg)
        if comparison is not None:
            obj["compare"] = comparison
        print(orjson.dumps(obj).decode())
    else:
        print(human(result, comparison, cfg))
    return 0
