"""``kairos``: one entry point, one sub-command per module.

Each command module defines ``configure(parser)`` (its arguments and help) and
``run(args) -> int`` (exit status); modules are imported only when their
command runs, so ``kairos --help`` stays fast.

Mistakes end in one line on stderr and a non-zero status, never a traceback: a bad
argument through :class:`Parser`, anything found later through the one boundary
``kairos.errors.run_command``.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import NoReturn

from kairos.errors import run_command

COMMANDS = {
    "worker": ("kairos.worker_cli", "run a Faust worker (the customer agent)"),
    "dispatcher": ("kairos.dispatcher_cli", "deliver the 'send' actions through their channels"),
    "simulate": ("kairos.simulate", "publish realistic simulated customer traffic"),
    "publish": ("kairos.publish", "publish contract events from a JSON-lines file"),
    "dev": ("kairos.dev", "run everything on this machine: broker, redis, worker, simulator"),
    "replay": ("kairos.replay", "run the core offline over event files and report what fires"),
    "triggers": ("kairos.triggers_cli", "validate, list, switch and tune triggers, live"),
    "report": ("kairos.report", "per-trigger effect: sent vs held out, uplift with 95%% CI"),
    "forget": ("kairos.forget", "forget a customer: tombstone their profile, clear Redis"),
    "console": ("kairos.console.command", "the campaign owners' web page, live"),
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and values like ``-5m`` read as values.

    argparse takes ``-5m`` for an unknown option (only ``-5`` looks like a number to
    it), so ``triggers set abandoned_cart delay -5m`` said the value was missing; here
    anything starting with a minus and a digit is a value, and the command says why a
    negative one is wrong.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = Parser(
        prog="kairos", description="Kairos: real-time behavioural triggers on Kafka and Faust."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the chosen command's module is imported
            modules[name] = importlib.import_module(module_name)
            modules[name].configure(sp)
    args = parser.parse_args(argv)
    from stream.security import SecuritySettingsError

    try:
        return run_command(f"kairos {args.command}", lambda: modules[args.command].run(args))
    except SecuritySettingsError as exc:  # a bad KAIROS_KAFKA_* / KAIROS_REDIS_SSL_* value
        print(f"kairos {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
