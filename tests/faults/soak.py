"""``python -m tests.faults.soak``: every fault scenario at full scale, repeatedly, as a table.

    python -m tests.faults.soak --runs 10                 # make soak RUNS=10
    python -m tests.faults.soak --scenarios baseline,combined --scale short
    python -m tests.faults.soak --rev HEAD                # the committed code, not the tree

Writes ``var/faults/<scenario>.json`` (the latest run of each), ``var/faults/soak.json``
(every run) and ``var/faults/soak.md`` (the table); a failed run's logs and counts are
kept in ``var/faults/logs/<scenario>-run<N>-failed/``; ``--readme`` also copies the table
into README.md, between the Fault suite section's markers. Exits 1 when any run lost or
duplicated a message or decided differently from replay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .counting import Counts
from .harness import VAR
from .run import run
from .scenarios import ALL, COMBINED_SCALE, FULL, SHORT, Scale
from .services import ROOT

COLUMNS = (
    ("scenario", lambda c: c.scenario),
    ("ok", lambda c: "yes" if c.ok else "**no**"),
    ("events", lambda c: f"{c.events:,}"),
    ("bad in", lambda c: c.bad_records_published),
    ("decisions live / replay", lambda c: f"{c.decisions_live:,} / {c.decisions_replay:,}"),
    ("missing", lambda c: c.decisions_missing),
    ("extra", lambda c: c.decisions_extra),
    ("status", lambda c: c.status_mismatches),
    ("sends expected", lambda c: f"{c.expected_sends:,}"),
    ("arrived", lambda c: f"{c.arrivals_unique:,}"),
    ("lost", lambda c: c.lost),
    ("dup", lambda c: c.duplicated_unexplained),
    ("resent after kill", lambda c: c.duplicated_after_kill),
    ("dead but arrived", lambda c: c.dead_but_arrived),
    ("dead letters", lambda c: f"{c.dead_letters}/{c.dead_letters_expected}"),
    ("crashes", lambda c: sum(len(v) for v in c.unexpected_exits.values())),
    ("s", lambda c: f"{c.seconds:.0f}"),
)


def scale_for(name: str, scale: str) -> Scale:
    if scale == "short":
        return SHORT
    return COMBINED_SCALE if name == "combined" else FULL


def export_revision(rev: str) -> tuple[Path, str] | None:
    """``git archive`` of ``rev`` under var/faults/code/ (read-only for the repository)."""
    commit = _git("rev-parse", "--short", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not commit:
        return None
    target = VAR / "code" / commit
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target, commit


def describe_tree() -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{commit} + uncommitted changes" if dirty else commit


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def table(rows: list[tuple[int, Counts]]) -> str:
    head = ["run", *(name for name, _ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for index, counts in rows:
        cells = [str(index), *(str(cell(counts)) for _, cell in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def totals(rows: list[tuple[int, Counts]]) -> str:
    """Per scenario: clean runs, and the range of lost and duplicated over the runs."""
    lines = ["| scenario | clean runs | lost (min-max) | dup (min-max) |", "|---|---|---|---|"]
    for name in dict.fromkeys(c.scenario for _, c in rows):
        mine = [c for _, c in rows if c.scenario == name]
        lost = [c.lost for c in mine]
        dup = [c.duplicated_unexplained for c in mine]
        lines.append(
            f"| {name} | {sum(c.ok for c in mine)}/{len(mine)} | {min(lost)}-{max(lost)} "
            f"| {min(dup)}-{max(dup)} |"
        )
    return "\n".join(lines)


async def soak(names: list[str], runs: int, scale: str, code_dir: Path, code: str) -> int:
    started = datetime.now(UTC)
    rows: list[tuple[int, Counts]] = []
    for index in range(1, runs + 1):
        for name in names:
            counts = await run(ALL[name](scale_for(name, scale)), VAR, code_dir)
            rows.append((index, counts))
            if not counts.ok:  # the next run of this scenario would replace its logs
                kept = VAR / "logs" / f"{name}-run{index}-failed"
                shutil.rmtree(kept, ignore_errors=True)
                (VAR / "logs" / name).rename(kept)
                shutil.copy(VAR / f"{name}.json", kept / f"{name}.json")
            _write(rows, started, names, runs, scale, code)
    return 0 if all(c.ok for _, c in rows) else 1


README_MARKERS = ("<!-- faults:start -->\n", "<!-- faults:end -->")


def update_readme(table_md: str, readme: Path = ROOT / "README.md") -> bool:
    """Put ``table_md`` between the README's fault markers; False when they are missing."""
    text = readme.read_text()
    start, end = README_MARKERS
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}{table_md.rstrip()}\n{end}{tail}")
    return True


def _write(
    rows: list[tuple[int, Counts]],
    started: datetime,
    names: list[str],
    runs: int,
    scale: str,
    code: str,
) -> None:
    command = " ".join(["python -m tests.faults.soak", *sys.argv[1:]])
    header = (
        f"Fault soak, {started:%Y-%m-%d %H:%M} UTC, code {code}, {platform.machine()} "
        f"{os.cpu_count()} cpu, Python {platform.python_version()}; {runs} run(s) of "
        f"{', '.join(names)} at {scale} scale. Command: `{command}`."
    )
    (VAR / "soak.md").write_text(f"{header}\n\n{totals(rows)}\n\n{table(rows)}\n")
    data = {"header": header, "runs": [{"run": i, **c.to_json()} for i, c in rows]}
    (VAR / "soak.json").write_text(json.dumps(data, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat every scenario this often")
    parser.add_argument(
        "--scenarios", default=",".join(ALL), help=f"comma-separated, of: {', '.join(ALL)}"
    )
    parser.add_argument("--scale", choices=("full", "short"), default="full")
    parser.add_argument("--rev", help="run the Kairos processes from this git revision")
    parser.add_argument(
        "--readme", action="store_true", help="copy the table into README.md's Fault suite"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown or args.runs < 1:
        problem = f"unknown scenario(s): {', '.join(unknown)}" if unknown else "--runs must be >= 1"
        print(f"soak: {problem}; scenarios are {', '.join(ALL)}", file=sys.stderr)
        return 2
    if args.rev:
        exported = export_revision(args.rev)
        if exported is None:
            print(f"soak: unknown git revision {args.rev!r}", file=sys.stderr)
            return 2
        code_dir, code = exported
    else:
        code_dir, code = ROOT, describe_tree()
    started = time.monotonic()
    status = asyncio.run(soak(names, args.runs, args.scale, code_dir, code))
    print(f"soak: {time.monotonic() - started:.0f}s; table in {VAR / 'soak.md'}")
    if args.readme and not update_readme((VAR / "soak.md").read_text()):
        print("soak: README.md has no fault markers; table not copied", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
