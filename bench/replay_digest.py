"""Are a replay's decisions byte-identical between two commits? A digest of each.

    .venv/bin/python bench/replay_digest.py [--events 300000] [--long-events 1000000]
        [--jobs 2] [--against REV]

Writes two files with this tree's generators (the simulator's default traffic, as
``replay_bench`` makes it, and ``kairos simulate --profile long-history``), then
replays each on ``--jobs`` processes and hashes exactly what ``kairos replay
--decisions-out`` would write (every decision as a JSON line, in decision-time
order). With ``--against REV`` the same files are replayed by that commit too
(``git archive`` into a temporary directory, run in its own process) and the
command fails unless every digest matches. Speed-ups to replay must keep them equal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Runs in the tree being checked (this one or ``--against``'s): only ``run_replay`` and
# ``Decision.to_record`` are needed, which every commit since issue #3 has.
_DIGEST = """
import gc, hashlib, json, sys
import orjson
from core.config import Config
from kairos.replay import run_replay
gc.disable()
out = {}
jobs = int(sys.argv[1])
for path in sys.argv[2:]:
    (result,) = run_replay([path], [Config()], jobs=jobs, keep_decisions=True)
    h = hashlib.sha256()
    for d in result.decisions or ():
        h.update(orjson.dumps(d.to_record()) + b"\\n")
    out[path] = {"events": result.events, "decisions": len(result.decisions or ()),
                 "timers": result.timers_fired, "sha256": h.hexdigest()}
print(json.dumps(out))
"""


def digests(tree: Path, paths: list[str], jobs: int) -> dict[str, dict]:
    """Per file: events, decisions, timers fired and the decisions' sha256, replayed by ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", _DIGEST, str(jobs), *paths],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"replay in {tree} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def write_files(tmp: str, events: int, long_events: int, seed: int) -> list[str]:
    from bench.replay_bench import long_history_lines, simulator_lines

    files = []
    for name, lines in (
        ("simulator", simulator_lines(events, seed)),
        ("long-history", long_history_lines(long_events, seed)),
    ):
        path = os.path.join(tmp, f"{name}.jsonl")
        Path(path).write_bytes(b"\n".join(lines) + b"\n")
        files.append(path)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="simulator events")
    parser.add_argument("--long-events", type=int, default=1_000_000, help="long-history events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--against", metavar="REV", help="also replay with this commit; compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(tmp, args.events, args.long_events, args.seed)
        ours = digests(ROOT, files, args.jobs)
        report = {"this tree": ours}
        if args.against:
            old = Path(tmp) / "against"
            old.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.against], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            report[args.against] = digests(old, files, args.jobs)
        names = {path: Path(path).stem for path in files}
        for tree, per_file in report.items():
            for path, d in per_file.items():
                print(
                    f"{tree:>12} {names[path]:>13}: {d['events']:,} events, "
                    f"{d['decisions']:,} decisions, {d['timers']:,} timers, sha256 {d['sha256']}"
                )
        if args.against and report[args.against] != ours:
            print("DIFFERENT: the decisions changed", file=sys.stderr)
            return 1
        if args.against:
            print("identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
