"""Email over SMTP (aiosmtplib): plain text body, optional HTML alternative.

Each message gets a ``Message-ID`` derived from its ``action_id``: the same action sent
twice (after a crash and replay) carries the same id, which lets mail systems and our
own logs recognise the duplicate. ``X-Kairos-Action-Id`` and ``X-Kairos-Trigger`` let
replies, bounces and opens be tied back to the action.

One SMTP connection per message: simple and correct; pool connections if an ESP's
connection setup becomes the bottleneck.
"""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from channels.providers.base import Channel, DeliveryError, Message

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def message_id(action_id: str, domain: str) -> str:
    """``<kairos.{action_id}@{domain}>``; ids with unsafe characters are hashed first."""
    local = (
        action_id
        if _SAFE_ID.fullmatch(action_id)
        else hashlib.sha256(action_id.encode()).hexdigest()[:32]
    )
    return f"<kairos.{local}@{domain}>"


def build_email(msg: Message, from_addr: str) -> EmailMessage:
    """The RFC 5322 message for ``msg``; ``payload["html"]`` adds an HTML alternative."""
    domain = from_addr.rpartition("@")[2] or "kairos.local"
    email = EmailMessage()
    email["From"] = from_addr
    email["To"] = msg.to
    email["Subject"] = msg.subject
    email["Date"] = formatdate(usegmt=True)  # send time: a deferred mail is not backdated
    email["Message-ID"] = message_id(msg.action_id, domain)
    email["X-Kairos-Action-Id"] = msg.action_id
    email["X-Kairos-Trigger"] = msg.trigger
    email.set_content(msg.body)
    html = msg.payload.get("html")
    if isinstance(html, str) and html:
        email.add_alternative(html, subtype="html")
    return email


class EmailChannel(Channel):
    """Sends through one SMTP server.

    ``starttls``: True requires STARTTLS, False never upgrades, None upgrades when the
    server offers it. ``use_tls``: implicit TLS from the first byte (port 465).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_addr: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool | None = None,
        use_tls: bool = False,
        timeout_s: float = 30.0,
        validate_certs: bool = True,
        name: str = "email",
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.from_addr = from_addr
        self._username = username
        self._password = password
        self._starttls = starttls
        self._use_tls = use_tls
        self._timeout_s = timeout_s
        self._validate_certs = validate_certs

    async def send(self, msg: Message) -> None:
        if not msg.to:
            raise DeliveryError("email: message has no recipient address", retryable=False)
        try:
            email = build_email(msg, self.from_addr)
        except ValueError as exc:  # e.g. a line break rendered into the subject
            raise DeliveryError(f"email: cannot build message: {exc}", retryable=False) from exc
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                use_tls=self._use_tls,
                timeout=self._timeout_s,
                validate_certs=self._validate_certs,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise _smtp_error(f"recipient refused: {exc}", min(codes, default=550)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _smtp_error(f"SMTP {exc.code}: {exc.message}", exc.code) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # connect, disconnect, timeout
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc


def _smtp_error(reason: str, code: int) -> DeliveryError:
    """SMTP 4xx is a temporary failure (greylisting, mailbox busy); 5xx is permanent."""
    return DeliveryError(reason, retryable=400 <= code < 500, status=code)
