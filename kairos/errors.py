"""The command line's one error boundary: a user's mistake is one line, never a traceback.

Commands check what they are given (``kairos.arguments`` for numbers and durations,
``kairos.inputs`` for files, config files and service URLs) and raise
:class:`UserError` with one line that says what is wrong, where, and what to do.
:func:`run_command` (called once, by ``kairos.cli``) prints it after the command's
name and exits non-zero; it also turns the ordinary failures no check can prevent
(a file that vanished, a broker or Redis that does not answer) into such a line.
Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable


class UserError(Exception):
    """A mistake in what the user gave: one line, and the exit status (2 for usage)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def run_command(prog: str, command: Callable[[], int | None]) -> int:
    """Run ``command``; a user's mistake prints ``prog: <one line>`` to stderr."""
    try:
        return int(command() or 0)
    except UserError as exc:
        return _fail(prog, str(exc), exc.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kairos replay ... | head`: the reader left, nothing is wrong
        _silence_stdout()
        return 0
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise  # a bug: its traceback is what a developer needs
        return _fail(prog, message, 1)


def explain(exc: BaseException) -> str | None:
    """One line for the failures a user causes or can fix, None for bugs."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return file_problem(str(exc.filename), exc)
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("aiokafka") and name in _KAFKA_UNREACHABLE:
        return (
            f"cannot reach the Kafka broker ({exc}); is it running? `kairos dev` starts one "
            "and prints the BROKER_URL to export"
        )
    if module.startswith("redis") and name in ("ConnectionError", "TimeoutError"):
        return f"cannot reach Redis ({exc}); is it running? check REDIS_URL or --redis"
    return None


_KAFKA_UNREACHABLE = frozenset({"KafkaConnectionError", "KafkaTimeoutError", "NoBrokersAvailable"})


def file_problem(path: str, exc: OSError) -> str:
    """``path``: what is wrong with it, and what to do."""
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file or folder; check the path"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a folder; give a file"
    if isinstance(exc, NotADirectoryError):
        return f"{path}: a part of the path is a file, not a folder"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied; check the file's permissions"
    return f"{path}: {exc.strerror or exc}"


def _fail(prog: str, message: str, code: int) -> int:
    with contextlib.suppress(OSError):
        sys.stdout.flush()  # what the command printed comes before the error
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """Python would report the closed pipe again when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
