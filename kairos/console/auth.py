"""Who may use the console, from the environment: users, their role and their secret.

=========================  ==========================================================
KAIROS_CONSOLE_USERS       ``name:role:secret`` entries separated by commas, e.g.
                           ``alice:admin:s3cret-one,bob:viewer:s3cret-two``
KAIROS_CONSOLE_USERS_FILE  the same entries, one a line (a mounted secret); read when
                           ``KAIROS_CONSOLE_USERS`` is not set
=========================  ==========================================================

Roles: ``admin`` may switch triggers, edit settings and apply previewed changes;
``viewer`` sees everything and changes nothing. A request signs in with HTTP basic
auth (name and secret: the browser asks) or ``Authorization: Bearer <secret>`` (scripts;
the secret names the user, so secrets must differ). Every change is recorded with the
user's name. Secrets are compared in constant time and never appear in a message.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kairos.errors import UserError

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
USERS = "KAIROS_CONSOLE_USERS"
USERS_FILE = "KAIROS_CONSOLE_USERS_FILE"
MIN_SECRET = 8
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    secret: str = field(repr=False)

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def users_from_env(env: Mapping[str, str] | None = None) -> list[User]:
    """The users; UserError in one line naming the variable and the entry when one is wrong."""
    env = os.environ if env is None else env
    if env.get(USERS, "").strip():
        source, entries = USERS, env[USERS].split(",")
    elif env.get(USERS_FILE, "").strip():
        path = Path(env[USERS_FILE])
        try:
            entries = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"{USERS_FILE}: cannot read {path}: {exc.strerror or exc}") from None
        source = f"{USERS_FILE} ({path})"
    else:
        raise UserError(
            f"no console users: set {USERS}=name:role:secret[,name:role:secret...] "
            f"(roles {', '.join(ROLES)}; secrets of {MIN_SECRET}+ characters)"
        )
    users: list[User] = []
    for n, raw in enumerate(entries, 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, _, rest = entry.partition(":")
        role, _, secret = rest.partition(":")
        where = f"{source} entry {n} ({name or '?'})"
        if not _NAME.fullmatch(name):
            raise UserError(
                f"{source} entry {n}: expected name:role:secret with a name of letters, digits "
                "and _.@-"
            )
        if role not in ROLES:
            raise UserError(f"{where}: role must be admin or viewer, got {role!r}")
        if len(secret) < MIN_SECRET:
            raise UserError(f"{where}: the secret must have at least {MIN_SECRET} characters")
        if any(u.name == name for u in users):
            raise UserError(f"{where}: the name {name!r} is given twice")
        if any(hmac.compare_digest(u.secret, secret) for u in users):
            raise UserError(f"{where}: the same secret as another user; give each their own")
        users.append(User(name, role, secret))  # type: ignore[arg-type]
    if not users:
        raise UserError(f"{source}: no users in it; expected name:role:secret entries")
    return users


def authenticate(users: list[User], header: str | None) -> User | None:
    """The user an ``Authorization`` header proves to be, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return _match(users, None, value)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, secret = decoded.partition(":")
        return _match(users, name, secret) if sep else None
    return None


def _match(users: list[User], name: str | None, secret: str) -> User | None:
    found = None
    for user in users:  # every secret compared, so the time says nothing about which
        same = hmac.compare_digest(user.secret.encode(), secret.encode())
        if same and (name is None or name == user.name):
            found = user
    return found
