"""Copy the latest benchmark table (bench/results/latest.md) into README.md.

    python scripts/readme_bench.py

Replaces what stands between the ``<!-- bench:start -->`` and ``<!-- bench:end -->``
markers, so the README shows the numbers of a real run, with its date and machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main() -> int:
    table = (ROOT / "bench/results/latest.md").read_text().strip()
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    print("README.md: benchmark table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
