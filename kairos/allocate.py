"""``kairos report --allocate FLOOR``: the next Thompson-sampling allocation, as live config.

From the report's figures per variant (sent, conversions), ``core.bandit`` gives each
variant's share; the result is the trigger's whole ``variants`` mapping, with the new
weights and the variants' own overrides as in the config, written as one live
override (``kairos triggers set TRIGGER variants '{...}'``). Printed by default;
``--apply`` sets it (every worker within 2 s, and in the config history). Run it
periodically (a cron job, daily): decisions follow the published config only, so a
replay under the same config makes the same decisions.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import replace
from typing import Any

from core.bandit import allocation
from core.config import Config, TriggerConfig
from core.config_file import config_to_dict
from core.variants import Variant


def allocations(
    report: dict[str, dict[str, Any]], cfg: Config, floor: float
) -> dict[str, dict[str, float]]:
    """Per trigger with variants in ``cfg``: each variant's new share."""
    out = {}
    for trigger, tcfg in cfg.triggers.items():
        if not tcfg.variants:
            continue
        figures = (report.get(trigger) or {}).get("variants") or {}
        results = {
            name: (
                int(figures.get(name, {}).get("sent", 0)),
                int(figures.get(name, {}).get("conversions_sent", 0)),
            )
            for name in tcfg.variants
        }
        out[trigger] = allocation(results, floor)
    return out


def override_value(tcfg: TriggerConfig, shares: dict[str, float]) -> str:
    """The trigger's ``variants`` with new weights, as one line of YAML (JSON is YAML too, and
    its double quotes leave single quotes free for the shell)."""
    variants = {name: Variant(shares[name], v.overrides) for name, v in tcfg.variants.items()}
    plain = config_to_dict(replace(tcfg, variants=variants))["variants"]
    return json.dumps(plain, ensure_ascii=False)


def run(report: dict[str, dict[str, Any]], cfg: Config, args: argparse.Namespace) -> int:
    from kairos import triggers_cli
    from kairos.errors import UserError

    try:
        planned = allocations(report, cfg, args.allocate)
    except ValueError as exc:  # a floor the variants cannot all have
        raise UserError(f"--allocate: {exc}") from None
    if not planned:
        print("no trigger has variants in the config: nothing to allocate")
        return 0
    for trigger, shares in planned.items():
        value = override_value(cfg.triggers[trigger], shares)
        print(f"kairos triggers set {trigger} variants {shlex.quote(value)}")
        if args.apply:
            change = argparse.Namespace(
                action="set",
                name=trigger,
                key="variants",
                value=value,
                config=args.config,
                redis=args.redis,
                by=f"kairos report --allocate {args.allocate:g}",
            )
            triggers_cli.run(change)
    return 0
