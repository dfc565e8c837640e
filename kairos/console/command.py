"""``kairos console``: the campaign owner's page, served by Kairos itself.

It reads and changes what ``kairos triggers`` reads and changes (the campaign file and
the live overrides in Redis), counts what ``kairos report`` counts (the ``actions``,
``conversions`` and ``deliveries`` topics) and previews a change as ``kairos replay
--compare`` does, on the recorded event files of one folder.

=====================  ============================================================
KAIROS_CONSOLE_USERS   who may sign in, and as what (``kairos/console/auth.py``)
KAIROS_CONSOLE_PORT    the port (``8080``; ``--port``)
KAIROS_CONSOLE_EVENTS  the folder of recorded event files (``var/events``; ``--events``)
=====================  ============================================================

plus ``BROKER_URL``, ``REDIS_URL`` and ``KAIROS_CONFIG``, as every command reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from kairos import inputs
from kairos.arguments import port as port_number
from kairos.errors import UserError

if TYPE_CHECKING:
    from kairos.console.auth import User
    from kairos.console.control import Control

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_PORT = 8080
DEFAULT_EVENTS = "var/events"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument(
        "--port",
        type=port_number,
        help=f"port (default: $KAIROS_CONSOLE_PORT or {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--config",
        help=f"campaign config file (default: $KAIROS_CONFIG or {inputs.DEFAULT_CONFIG})",
    )
    parser.add_argument("--redis", help=f"Redis URL (default: $REDIS_URL or {DEFAULT_REDIS})")
    parser.add_argument("--bootstrap", help="Kafka host:port (default: from $BROKER_URL)")
    parser.add_argument(
        "--events",
        help=f"folder of recorded event files to preview on (default: $KAIROS_CONSOLE_EVENTS "
        f"or {DEFAULT_EVENTS})",
    )


def run(args: argparse.Namespace) -> int:
    from kairos.console.auth import users_from_env
    from kairos.console.control import Control

    users = users_from_env()
    port = args.port if args.port is not None else _env_port()
    path, source = inputs.config_path(args.config)
    if source != "the default" and inputs.config_text(path) is None:
        raise UserError(f"{path}: no such config file (from {source}); check the path", 1)
    redis_address = inputs.redis_url(args.redis, DEFAULT_REDIS)
    control = Control(path, source, redis_address.value)
    with inputs.reaching("Redis", redis_address):
        control.client.ping()
    broker = inputs.broker(args.bootstrap)
    inputs.answering("Kafka broker", broker)
    events = Path(args.events or os.environ.get("KAIROS_CONSOLE_EVENTS") or DEFAULT_EVENTS)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_serve(control, users, events, broker.value, args.host, port))
    return 0


def _env_port() -> int:
    raw = os.environ.get("KAIROS_CONSOLE_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise UserError(f"KAIROS_CONSOLE_PORT must be a port number from 0 to 65535, got {raw!r}")
    return int(raw)


async def _serve(
    control: Control, users: list[User], events: Path, bootstrap: str, host: str, port: int
) -> None:
    from aiohttp import web

    from kairos.console.app import create_app

    sock = _listening(host, port)  # before anything starts: a taken port is said at once
    app = create_app(control, users, events, bootstrap)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock).start()
        bound = sock.getsockname()
        names = ", ".join(f"{u.name} ({u.role})" for u in users)
        print(f"kairos console: http://{bound[0]}:{bound[1]}/", flush=True)
        print(f"  config  {control.config_path}  users  {names}", flush=True)
        print(f"  events  {events} (recorded files to preview on)", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def _listening(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = (exc.strerror or str(exc)).lower()
        raise UserError(
            f"cannot listen on {host}:{port}: {why}; choose another --port", 1
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock
