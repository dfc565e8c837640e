"""``kairos worker``: settings come from the environment (see ``stream/settings.py``)."""

from __future__ import annotations

import argparse
import os
import sys

from kairos import arguments, inputs


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help=f"campaign config file (default: $KAIROS_CONFIG or {inputs.DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--metrics-port", type=arguments.port, help="default: $KAIROS_METRICS_PORT or 9100"
    )


def check_startup(command: str) -> inputs.Address:
    """Before a worker or dispatcher starts: its config file and service URLs are usable.

    A config file named by ``--config`` or ``$KAIROS_CONFIG`` must exist; the default one
    may be missing (the built-in defaults run, and a line says so). Returns the broker.
    """
    path, source = inputs.config_path()
    if source != "the default" or os.path.exists(path):
        inputs.campaign_config(path, required=True)
    else:
        print(f"kairos {command}: {path} not found; running the built-in defaults", file=sys.stderr)
    inputs.redis_url()
    broker = inputs.broker()
    inputs.answering("Kafka broker", broker)
    return broker


def run(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["KAIROS_CONFIG"] = args.config
    if args.metrics_port is not None:
        os.environ["KAIROS_METRICS_PORT"] = str(args.metrics_port)
    broker = check_startup("worker")
    from kairos.worker import run as run_worker

    with inputs.reaching("Kafka broker", broker):
        run_worker()
    return 0
