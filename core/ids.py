"""Deterministic identifiers: the same cause always yields the same id."""

from __future__ import annotations

from hashlib import blake2b


def action_id(trigger: str, customer_id: str, *parts: object) -> str:
    """Id of a decision, derived from what caused it, so a replay after a crash repeats it."""
    if len(parts) == 1:  # every decision's form: spelled out, it costs a third less
        text = f"{trigger}|{customer_id}|{parts[0]}"
    else:
        text = "|".join((trigger, customer_id, *map(str, parts)))
    return blake2b(text.encode(), digest_size=12).hexdigest()


def unit_share(*parts: object) -> float:
    """A deterministic number in [0, 1) for holdout groups and offer codes."""
    text = "|".join(map(str, parts))
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64


def offer_code(trigger: str, customer_id: str, discriminator: object) -> str:
    """A unique, unguessable-enough, deterministic offer code like ``KX7Q-M2PA``."""
    digest = blake2b(f"{trigger}|{customer_id}|{discriminator}".encode(), digest_size=8).digest()
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    n = int.from_bytes(digest, "big")
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(alphabet))
        chars.append(alphabet[r])
    return "".join(chars[:4]) + "-" + "".join(chars[4:])
