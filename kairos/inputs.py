"""What commands read and reach, checked before use: files, config files, broker and Redis.

Each check raises :class:`kairos.errors.UserError` with one line naming the thing, where
it came from (an option, an environment variable, the default) and what to do.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.config import Config
from core.config_file import ConfigError, parse_config
from kairos.errors import UserError, explain, file_problem

MAX_CONFIG_BYTES = 1024 * 1024  # a campaign file is a few KiB
_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


# --- files ---------------------------------------------------------------------------------


def readable_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a file this process can read."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such {what}; check the path")
    if p.is_dir():
        raise UserError(f"{path}: is a folder; give a file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{path}: permission denied; check the {what}'s permissions")
    return p


def writable_file(path: str | Path, what: str = "output file") -> Path:
    """``path`` if it can be created or overwritten: its folder exists, it is not a folder."""
    p = Path(path)
    folder = p.parent
    if p.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for the {what}")
    if not folder.is_dir():
        raise UserError(f"{path}: folder {folder} does not exist; create it first (mkdir -p)")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UserError(f"{path}: permission denied; choose another place for the {what}")
    return p


# --- campaign config files -----------------------------------------------------------------


def config_text(path: str | Path) -> str | None:
    """The text of a config file, None when there is none; UserError when it is unreadable."""
    p = Path(path)
    if not p.exists():
        return None
    readable_file(p, "config file")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: {p.stat().st_size:,} bytes is too large for a config file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(file_problem(str(path), exc)) from None
    return decode_config(data, str(path))


def decode_config(data: bytes, source: str) -> str:
    """UTF-8 text (a BOM is fine); UTF-16/32 and binary data are named as such."""
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise UserError(f"{source}: is {name} text; save it as UTF-8 (YAML in UTF-8 expected)")
    if b"\0" in data:
        raise UserError(f"{source}: is not a text file (binary data); a YAML file expected")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None


def parse_config_text(text: str, source: str, base: Config | None = None) -> Config:
    """``core.config_file.parse_config``, with absurd nesting as a problem, not a crash."""
    try:
        return parse_config(text, source, base)
    except RecursionError:
        raise UserError(
            f"{source}: nested too deeply for a config file (a campaign config is 3-4 "
            "levels deep: see config/triggers.yaml)"
        ) from None


def load_config_file(path: str | Path, required: bool = True) -> Config:
    """The config of ``path``: ConfigError lists its problems; UserError when unreadable.

    A missing file is an error when ``required``; otherwise it means the defaults.
    """
    text = config_text(path)
    if text is None:
        if required:
            raise UserError(f"{path}: no such config file; check the path (or --config)")
        return Config()
    return parse_config_text(text, str(path))


def campaign_config(path: str | Path, required: bool = True) -> Config:
    """:func:`load_config_file` for a command: problems to stderr, then one line to stop on."""
    try:
        return load_config_file(path, required)
    except ConfigError as exc:
        print(config_problems(exc), file=sys.stderr)
        n = len(exc.problems)
        raise UserError(
            f"{path}: {n} problem(s) in the config file, the first shown above"
        ) from None


def config_problems(exc: ConfigError, limit: int = 5) -> str:
    """The first problems of a config file, one a line, and how many there are."""
    lines = [str(p) for p in exc.problems[:limit]]
    more = len(exc.problems) - limit
    if more > 0:
        lines.append(f"... and {more} more (kairos triggers validate lists them all)")
    return "\n".join(lines)


DEFAULT_CONFIG = "config/triggers.yaml"


def config_path(option: str | None = None) -> tuple[str, str]:
    """The campaign file every command uses: ``--config``, else ``$KAIROS_CONFIG``, else
    ``config/triggers.yaml``; and where that came from. ``kairos triggers``, ``kairos dev``
    and the workers agree on it, so a change made from the command line is what runs."""
    if option:
        return option, "--config"
    if os.environ.get("KAIROS_CONFIG"):
        return os.environ["KAIROS_CONFIG"], "KAIROS_CONFIG"
    return DEFAULT_CONFIG, "the default"


# --- services ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """A service address and where it came from, for messages."""

    value: str  # kafka bootstrap host:port[,host:port], or a Redis URL
    source: str  # "--bootstrap", "BROKER_URL", "the default"...

    def __str__(self) -> str:
        return f"{redact(self.value)} (from {self.source})"


def broker(option: str | None = None) -> Address:
    """The Kafka bootstrap from ``--bootstrap``, else ``$BROKER_URL``, else the default."""
    from stream.settings import Settings

    if option:
        raw, source = option, "--bootstrap"
    else:
        raw = Settings().broker_url
        source = "BROKER_URL" if os.environ.get("BROKER_URL") else "the default"
    bootstrap = raw.split("://", 1)[-1].replace(";", ",")
    for entry in bootstrap.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(
                f"{source} {redact(raw)!r} is not a broker address: expected kafka://host:port, "
                "e.g. kafka://127.0.0.1:9092"
            )
    return Address(bootstrap, source)


def redis_url(option: str | None = None, default: str = "redis://127.0.0.1:6379/0") -> Address:
    """The Redis URL from ``--redis``, else ``$REDIS_URL``, else ``default``."""
    if option:
        url, source = option, "--redis"
    elif os.environ.get("REDIS_URL"):
        url, source = os.environ["REDIS_URL"], "REDIS_URL"
    else:
        url, source = default, "the default"
    if not _is_redis_url(url):
        raise UserError(
            f"{source} {redact(url)!r} is not a Redis URL: expected redis://host:port/db, "
            "e.g. redis://127.0.0.1:6379/0"
        )
    return Address(url, source)


def answering(service: str, address: Address, timeout: float = 3.0) -> None:
    """Fail at once, in one line, when nothing listens at any of ``address``'s host:port."""
    why = "no answer"
    for entry in address.value.split(","):
        host, _, port = entry.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except OSError as exc:
            why = exc.strerror or str(exc) or type(exc).__name__
    raise UserError(f"cannot reach the {service} at {address}: {why.lower()}; is it running?", 1)


def _is_redis_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return bool(parts.path)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return False
    try:
        port = parts.port  # raises for a port that is not a number
    except ValueError:
        return False
    db = parts.path.strip("/")
    return (port is None or 0 < port < 65536) and (not db or db.isdigit())


@contextlib.contextmanager
def reaching(service: str, address: Address) -> Iterator[None]:
    """Turn "cannot connect" from inside the block into one line naming ``address``.

    aiokafka also logs each failed connection at ERROR; the line says it once.
    """
    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        yield
    except Exception as exc:
        if explain(exc) is None or (isinstance(exc, OSError) and exc.filename is not None):
            raise
        kafka = "broker" in service
        why = "no answer" if kafka else _first_line(exc)
        hint = " (`kairos dev` starts one and prints the BROKER_URL to export)" if kafka else ""
        raise UserError(
            f"cannot reach the {service} at {address}: {why}; is it running?{hint}", code=1
        ) from None
    finally:
        kafka_log.setLevel(level)


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
