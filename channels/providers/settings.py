"""Provider endpoints and credentials, read from the environment in this one place.

=============================  ========  =================================================
variable                       channel   meaning (default)
=============================  ========  =================================================
KAIROS_WEBHOOK_URL             webhook   URL the signed JSON is POSTed to (required)
KAIROS_WEBHOOK_SECRET          webhook   HMAC-SHA256 signing secret (required)
KAIROS_SMTP_HOST               email     SMTP server host (``localhost``)
KAIROS_SMTP_PORT               email     SMTP port (465 with KAIROS_SMTP_TLS, else 587
                                         with KAIROS_SMTP_STARTTLS=true, else 25)
KAIROS_SMTP_USER               email     SMTP AUTH user (no AUTH when unset)
KAIROS_SMTP_PASSWORD           email     SMTP AUTH password
KAIROS_SMTP_STARTTLS           email     ``true`` require STARTTLS, ``false`` never,
                                         unset: upgrade when the server offers it
KAIROS_SMTP_TLS                email     ``true`` for implicit TLS (``false``)
KAIROS_SMTP_FROM               email     From address (required)
KAIROS_SMS_URL                 sms       provider Messages endpoint (required)
KAIROS_SMS_SID                 sms       account SID, basic-auth user (required)
KAIROS_SMS_TOKEN               sms       auth token, basic-auth password (required)
KAIROS_SMS_FROM                sms       sender number or id (required)
KAIROS_PUSH_URL                push      FCM v1 ``messages:send`` endpoint (required)
KAIROS_PUSH_TOKEN              push      OAuth2 bearer token (required)
KAIROS_SLACK_URL               slack     Slack incoming-webhook URL (required)
KAIROS_WECOM_URL               wecom     WeCom group-robot webhook URL (required)
KAIROS_CHANNEL_TIMEOUT         all       per-request timeout, seconds (``30``)
=============================  ========  =================================================

``console`` needs nothing. Booleans accept 1/0, true/false, yes/no, on/off. Retries and the
dispatcher's own settings (``KAIROS_DELIVERY_*``, ``KAIROS_DISPATCH_*``): ``channels/settings.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from channels.providers.base import Channel
from channels.providers.console import ConsoleChannel
from channels.providers.email import EmailChannel
from channels.providers.push import PushChannel
from channels.providers.slack import SlackChannel
from channels.providers.sms import SmsChannel
from channels.providers.webhook import WebhookChannel
from channels.providers.wecom import WeComChannel

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A missing or malformed environment variable, named in the message."""


class _Env:
    def __init__(self, env: Mapping[str, str], channel: str) -> None:
        self._env = env
        self._channel = channel

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self._env.get(key, "").strip()
        return value or default

    def required(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise SettingsError(f"{key} is required for the {self._channel!r} channel")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None:
            return None
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SettingsError(f"{key} must be true or false, got {value!r}")

    def number(self, key: str, default: float) -> float:
        value = self.get(key)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise SettingsError(f"{key} must be a number, got {value!r}") from None


def _webhook(e: _Env, timeout: float) -> Channel:
    return WebhookChannel(
        e.required("KAIROS_WEBHOOK_URL"), e.required("KAIROS_WEBHOOK_SECRET"), timeout_s=timeout
    )


def _email(e: _Env, timeout: float) -> Channel:
    use_tls = e.boolean("KAIROS_SMTP_TLS") or False
    starttls = e.boolean("KAIROS_SMTP_STARTTLS")
    default_port = 465 if use_tls else 587 if starttls else 25
    return EmailChannel(
        e.get("KAIROS_SMTP_HOST", "localhost") or "localhost",
        int(e.number("KAIROS_SMTP_PORT", default_port)),
        from_addr=e.required("KAIROS_SMTP_FROM"),
        username=e.get("KAIROS_SMTP_USER"),
        password=e.get("KAIROS_SMTP_PASSWORD"),
        starttls=starttls,
        use_tls=use_tls,
        timeout_s=timeout,
    )


def _sms(e: _Env, timeout: float) -> Channel:
    return SmsChannel(
        e.required("KAIROS_SMS_URL"),
        e.required("KAIROS_SMS_SID"),
        e.required("KAIROS_SMS_TOKEN"),
        e.required("KAIROS_SMS_FROM"),
        timeout_s=timeout,
    )


def _push(e: _Env, timeout: float) -> Channel:
    return PushChannel(
        e.required("KAIROS_PUSH_URL"), e.required("KAIROS_PUSH_TOKEN"), timeout_s=timeout
    )


def _slack(e: _Env, timeout: float) -> Channel:
    return SlackChannel(e.required("KAIROS_SLACK_URL"), timeout_s=timeout)


def _wecom(e: _Env, timeout: float) -> Channel:
    return WeComChannel(e.required("KAIROS_WECOM_URL"), timeout_s=timeout)


def _console(e: _Env, timeout: float) -> Channel:
    return ConsoleChannel()


FACTORIES: dict[str, Callable[[_Env, float], Channel]] = {
    "console": _console,
    "webhook": _webhook,
    "email": _email,
    "sms": _sms,
    "push": _push,
    "slack": _slack,
    "wecom": _wecom,
}


def channel_from_env(name: str, env: Mapping[str, str] | None = None) -> Channel:
    """The channel ``name`` configured from ``env`` (default ``os.environ``)."""
    factory = FACTORIES.get(name)
    if factory is None:
        raise SettingsError(f"unknown channel {name!r}; expected one of {', '.join(FACTORIES)}")
    e = _Env(os.environ if env is None else env, name)
    return factory(e, e.number("KAIROS_CHANNEL_TIMEOUT", 30.0))
