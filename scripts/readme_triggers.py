"""Write the trigger table generated from the declarations into README.md.

    python scripts/readme_triggers.py          # rewrite the table
    python scripts/readme_triggers.py --check  # exit 1 if README.md's table is stale

The table (``core.trigger_table``) stands between the ``<!-- triggers:start -->``
and ``<!-- triggers:end -->`` markers of the "Triggers" section; each row comes
from a trigger's ``SPEC`` and its config type's defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.trigger_table import markdown_table, replace_table  # noqa: E402
from core.triggers import SPECS  # noqa: E402


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    try:
        updated = replace_table(text, markdown_table(SPECS.values()))
    except ValueError as exc:
        print(f"README.md: {exc}", file=sys.stderr)
        return 1
    if updated == text:
        print("README.md: trigger table up to date")
        return 0
    if "--check" in argv:
        print("README.md: trigger table differs; run python scripts/readme_triggers.py")
        return 1
    readme.write_text(updated, encoding="utf-8")
    print("README.md: trigger table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
