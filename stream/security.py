"""Kafka SASL/TLS and Redis TLS from the environment, and URL redaction for logs.

Every Kafka client Kairos makes takes its security from here: plain aiokafka clients
(producers, consumers, the admin client) through :func:`kafka_client_kwargs`, the Faust
apps through :func:`faust_broker_credentials`. Redis clients add :func:`redis_kwargs`
to ``from_url``; TLS itself is chosen by a ``rediss://`` URL. The variables are listed
in ``stream/settings.py``.

Settings are checked when a client is made: a value that cannot work (an unknown
protocol, SASL without a user, a CA file that does not exist, TLS files for a plain
connection) raises :class:`SecuritySettingsError` naming the variable, instead of
connecting in the clear or failing later in a handshake. Passwords come from
``*_PASSWORD`` or, better in production (Docker and Kubernetes secrets), from the file
named by ``*_PASSWORD_FILE``. They never reach a log: Faust's ``SASLCredentials`` shows
the user only, this module's dataclass hides the password from its repr, and
:func:`redact_url` masks the password in a URL.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MASK = "***"
# Query parameters that carry credentials (a WeCom robot's ``key=``, signed URLs' ``sig=``).
_SECRET_QUERY = re.compile(r"key|token|secret|pass|sig|auth|credential", re.IGNORECASE)


class SecuritySettingsError(ValueError):
    """A security setting that cannot work; the message names the variable."""


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """The ``KAIROS_KAFKA_*`` security settings, checked by :meth:`from_env`."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        e = _Env(os.environ if env is None else env)
        protocol = (e.get("KAIROS_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise SecuritySettingsError(
                f"KAIROS_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, "
                f"got {protocol!r}"
            )
        mechanism = (e.get("KAIROS_KAFKA_SASL_MECHANISM") or "PLAIN").upper()
        if mechanism not in MECHANISMS:
            raise SecuritySettingsError(
                f"KAIROS_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
                f"got {mechanism!r}"
            )
        username = e.get("KAIROS_KAFKA_SASL_USERNAME")
        password = e.secret("KAIROS_KAFKA_SASL_PASSWORD")
        files = {
            "cafile": e.path("KAIROS_KAFKA_SSL_CAFILE"),
            "certfile": e.path("KAIROS_KAFKA_SSL_CERTFILE"),
            "keyfile": e.path("KAIROS_KAFKA_SSL_KEYFILE"),
        }
        security = cls(protocol, mechanism, username, password, **files)
        sasl_names = ("MECHANISM", "USERNAME", "PASSWORD", "PASSWORD_FILE")
        sasl_set = [n for n in sasl_names if e.get(f"KAIROS_KAFKA_SASL_{n}")]
        if security.sasl:
            if not username or password is None:
                raise SecuritySettingsError(
                    f"KAIROS_KAFKA_SECURITY_PROTOCOL={protocol} needs KAIROS_KAFKA_SASL_USERNAME "
                    "and KAIROS_KAFKA_SASL_PASSWORD (or KAIROS_KAFKA_SASL_PASSWORD_FILE)"
                )
        elif sasl_set:
            raise SecuritySettingsError(
                f"KAIROS_KAFKA_SASL_{sasl_set[0]} is set but KAIROS_KAFKA_SECURITY_PROTOCOL is "
                f"{protocol}; use SASL_SSL (or SASL_PLAINTEXT)"
            )
        tls_set = [n for n, v in files.items() if v]
        if tls_set and not security.tls:
            raise SecuritySettingsError(
                f"KAIROS_KAFKA_SSL_{tls_set[0].upper()} is set but KAIROS_KAFKA_SECURITY_PROTOCOL "
                f"is {protocol}; use SSL or SASL_SSL"
            )
        if security.keyfile and not security.certfile:
            raise SecuritySettingsError(
                "KAIROS_KAFKA_SSL_KEYFILE needs KAIROS_KAFKA_SSL_CERTFILE (the client certificate)"
            )
        return security

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client context (the system CAs unless a CA file is given), or None."""
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context


def kafka_client_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer`` / ``AIOKafkaConsumer`` / the admin client.

    Empty for ``PLAINTEXT`` (aiokafka's default), so passing it changes nothing there.
    """
    security = KafkaSecurity.from_env(env)
    kwargs: dict[str, Any] = {}
    if security.protocol != "PLAINTEXT":
        kwargs["security_protocol"] = security.protocol
    if security.tls:
        kwargs["ssl_context"] = security.ssl_context()
    if security.sasl:
        kwargs["sasl_mechanism"] = security.mechanism
        kwargs["sasl_plain_username"] = security.username
        kwargs["sasl_plain_password"] = security.password
    return kwargs


def faust_broker_credentials(env: Mapping[str, str] | None = None) -> Any:
    """``faust.App(broker_credentials=...)``: SASL or SSL credentials, or None (plaintext).

    Faust hands them to every client it makes (consumer, producer, topic creation).
    """
    import faust  # here, so the plain clients (publish, report) do not import Faust

    security = KafkaSecurity.from_env(env)
    context = security.ssl_context()
    if security.sasl:
        # Faust derives SASL_SSL from the presence of a context, SASL_PLAINTEXT otherwise.
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=context,
            mechanism=security.mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def redis_kwargs(url: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Extra keyword arguments for ``redis.from_url(url, ...)``: the TLS files of a rediss:// URL.

    The server certificate is always verified (redis-py's default ``ssl_cert_reqs``); the
    CA file is needed when the server's certificate is not signed by a system CA.
    """
    e = _Env(os.environ if env is None else env)
    files = {
        "ssl_ca_certs": e.path("KAIROS_REDIS_SSL_CAFILE"),
        "ssl_certfile": e.path("KAIROS_REDIS_SSL_CERTFILE"),
        "ssl_keyfile": e.path("KAIROS_REDIS_SSL_KEYFILE"),
    }
    given = {name: value for name, value in files.items() if value}
    if urlsplit(url).scheme != "rediss":
        if given:
            variable = {
                "ssl_ca_certs": "CAFILE",
                "ssl_certfile": "CERTFILE",
                "ssl_keyfile": "KEYFILE",
            }[next(iter(given))]
            raise SecuritySettingsError(
                f"KAIROS_REDIS_SSL_{variable} is set but REDIS_URL ({redact_url(url)}) is not "
                "a rediss:// URL"
            )
        return {}
    if given.get("ssl_keyfile") and not given.get("ssl_certfile"):
        raise SecuritySettingsError(
            "KAIROS_REDIS_SSL_KEYFILE needs KAIROS_REDIS_SSL_CERTFILE (the client certificate)"
        )
    return given


def redact_url(url: str) -> str:
    """``url`` fit for a log: the password and credential-like query values become ``***``.

    ``redis://:hunter2@host:6379/0`` -> ``redis://:***@host:6379/0``; the user name,
    host and path stay, so the message still says where it went.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            # a user with no password may itself be the token (https://TOKEN@host)
            netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, MASK if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*"
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not parseable as a URL: mask everything between // and @
        return re.sub(r"//[^/@]*@", f"//{MASK}@", url)


class _Env:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str) -> str | None:
        return self._env.get(name, "").strip() or None

    def path(self, name: str) -> str | None:
        value = self.get(name)
        if value is not None and not os.path.isfile(value):
            raise SecuritySettingsError(f"{name}: {value} is not a readable file")
        return value

    def secret(self, name: str) -> str | None:
        """``NAME`` or the contents of the file ``NAME_FILE`` (one trailing newline dropped)."""
        value = self._env.get(name) or None
        path = self.get(f"{name}_FILE")
        if value is not None and path is not None:
            raise SecuritySettingsError(f"set {name} or {name}_FILE, not both")
        if path is None:
            return value
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise SecuritySettingsError(
                f"{name}_FILE: cannot read {path} ({exc.strerror})"
            ) from None
        return text.removesuffix("\n").removesuffix("\r")
