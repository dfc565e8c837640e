"""``kairos worker``: settings come from the environment (see ``stream/settings.py``)."""

from __future__ import annotations

import argparse
import os


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="campaign config file (default: $KAIROS_CONFIG)")
    parser.add_argument("--metrics-port", type=int, help="default: $KAIROS_METRICS_PORT or 9100")


def run(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["KAIROS_CONFIG"] = args.config
    if args.metrics_port is not None:
        os.environ["KAIROS_METRICS_PORT"] = str(args.metrics_port)
    from kairos.worker import run as run_worker

    run_worker()
    return 0
