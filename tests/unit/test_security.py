"""Kafka SASL/TLS and Redis TLS settings: what reaches aiokafka, Faust and redis-py.

The mapping is checked against the real libraries: aiokafka's clients accept the
arguments, and Faust's own translation of the credentials gives the same aiokafka
settings as the plain clients get.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from kairos import cli
from stream.security import (
    KafkaSecurity,
    SecuritySettingsError,
    faust_broker_credentials,
    kafka_client_kwargs,
    redact_url,
    redis_kwargs,
)

PASSWORD = "pw-3f9a1c-not-in-any-repr"


PKI = Path(__file__).with_name("pki")


@pytest.fixture(scope="module")
def pki() -> dict[str, str]:
    """A self-signed CA-style certificate (CN 127.0.0.1, valid to 2126) and its key.

    Made once with ``openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj
    /CN=127.0.0.1``, for these tests only (a unit test starts no process); no connection
    is ever made with it.
    """
    return {"cert": str(PKI / "cert.pem"), "key": str(PKI / "key.pem")}


def sasl_ssl_env(pki: dict[str, str], password_file: Path) -> dict[str, str]:
    password_file.write_text(PASSWORD + "\n")
    return {
        "KAIROS_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAIROS_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAIROS_KAFKA_SASL_USERNAME": "kairos",
        "KAIROS_KAFKA_SASL_PASSWORD_FILE": str(password_file),
        "KAIROS_KAFKA_SSL_CAFILE": pki["cert"],
        "KAIROS_KAFKA_SSL_CERTFILE": pki["cert"],
        "KAIROS_KAFKA_SSL_KEYFILE": pki["key"],
    }


def test_plaintext_adds_nothing_to_any_client() -> None:
    assert kafka_client_kwargs({}) == {}
    assert faust_broker_credentials({}) is None
    assert redis_kwargs("redis://127.0.0.1:6379/0", {}) == {}


def test_sasl_ssl_scram_maps_to_aiokafka_arguments(pki: dict[str, str], tmp_path: Path) -> None:
    kwargs = kafka_client_kwargs(sasl_ssl_env(pki, tmp_path / "pw"))
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "kairos",
        "sasl_plain_password": PASSWORD,  # the file's content, its newline dropped
    }
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1  # our CA file, not only the system's


def test_sasl_plaintext_has_no_tls_context() -> None:
    env = {
        "KAIROS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAIROS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAIROS_KAFKA_SASL_USERNAME": "u",
        "KAIROS_KAFKA_SASL_PASSWORD": PASSWORD,
    }
    assert kafka_client_kwargs(env) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": PASSWORD,
    }
    creds = faust_broker_credentials(env)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol.value == "SASL_PLAINTEXT" and creds.ssl_context is None


def test_ssl_only_gives_faust_ssl_credentials(pki: dict[str, str]) -> None:
    env = {"KAIROS_KAFKA_SECURITY_PROTOCOL": "SSL", "KAIROS_KAFKA_SSL_CAFILE": pki["cert"]}
    kwargs = kafka_client_kwargs(env)
    assert kwargs["security_protocol"] == "SSL" and set(kwargs) == {
        "security_protocol",
        "ssl_context",
    }
    creds = faust_broker_credentials(env)
    assert isinstance(creds, faust.SSLCredentials)
    assert creds.context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("protocol", ["SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_reaches_the_same_aiokafka_settings_as_the_plain_clients(
    protocol: str, pki: dict[str, str], tmp_path: Path
) -> None:
    env = sasl_ssl_env(pki, tmp_path / "pw") | {"KAIROS_KAFKA_SECURITY_PROTOCOL": protocol}
    if not protocol.startswith("SASL"):
        env = {k: v for k, v in env.items() if "SASL" not in k}
    if "SSL" not in protocol:
        env = {k: v for k, v in env.items() if "_SSL_" not in k}
    ours = kafka_client_kwargs(env)
    faust_auth = credentials_to_aiokafka_auth(faust_broker_credentials(env))
    faust_side = {k: v for k, v in faust_auth.items() if v is not None}  # ssl_context=None
    assert set(ours) == set(faust_side)
    for name, value in ours.items():
        if name == "ssl_context":
            assert isinstance(faust_side[name], ssl.SSLContext)
        else:
            assert faust_side[name] == value, name


async def test_aiokafka_clients_accept_the_arguments(pki: dict[str, str], tmp_path: Path) -> None:
    kwargs = kafka_client_kwargs(sasl_ssl_env(pki, tmp_path / "pw"))
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **kwargs)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **kwargs)
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9", **kwargs)
    assert producer.client._security_protocol == "SASL_SSL"
    assert consumer._client._sasl_mechanism == "SCRAM-SHA-512"
    assert admin._client._sasl_plain_username == "kairos"
    await producer.stop()
    await consumer.stop()
    await admin.close()


def test_password_never_shows_in_a_repr(pki: dict[str, str], tmp_path: Path) -> None:
    env = sasl_ssl_env(pki, tmp_path / "pw")
    assert PASSWORD not in repr(faust_broker_credentials(env))
    assert PASSWORD not in repr(KafkaSecurity.from_env(env))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KAIROS_KAFKA_SECURITY_PROTOCOL": "TLS"},
            "KAIROS_KAFKA_SECURITY_PROTOCOL must be one of",
        ),
        (
            {"KAIROS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAIROS_KAFKA_SASL_USERNAME": "u"},
            "needs KAIROS_KAFKA_SASL_USERNAME and KAIROS_KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "KAIROS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAIROS_KAFKA_SASL_MECHANISM": "GSSAPI",
            },
            "KAIROS_KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {"KAIROS_KAFKA_SASL_USERNAME": "u", "KAIROS_KAFKA_SASL_PASSWORD": "p"},
            "KAIROS_KAFKA_SASL_USERNAME is set but KAIROS_KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"KAIROS_KAFKA_SASL_PASSWORD": "p", "KAIROS_KAFKA_SASL_PASSWORD_FILE": "/etc/hostname"},
            "set KAIROS_KAFKA_SASL_PASSWORD or KAIROS_KAFKA_SASL_PASSWORD_FILE, not both",
        ),
        (
            {
                "KAIROS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAIROS_KAFKA_SASL_USERNAME": "u",
                "KAIROS_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw",
            },
            "KAIROS_KAFKA_SASL_PASSWORD_FILE: cannot read /nonexistent/pw",
        ),
        (
            {"KAIROS_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "KAIROS_KAFKA_SSL_CAFILE: /nonexistent/ca.pem is not a readable file",
        ),
        (
            {"KAIROS_KAFKA_SSL_CAFILE": "/etc/hostname"},
            "KAIROS_KAFKA_SSL_CAFILE is set but KAIROS_KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"KAIROS_KAFKA_SECURITY_PROTOCOL": "SSL", "KAIROS_KAFKA_SSL_KEYFILE": "/etc/hostname"},
            "KAIROS_KAFKA_SSL_KEYFILE needs KAIROS_KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SecuritySettingsError, match=message.replace("(", r"\(")):
        kafka_client_kwargs(env)
    with pytest.raises(SecuritySettingsError):
        faust_broker_credentials(env)


def test_rediss_url_takes_the_tls_files(pki: dict[str, str]) -> None:
    env = {
        "KAIROS_REDIS_SSL_CAFILE": pki["cert"],
        "KAIROS_REDIS_SSL_CERTFILE": pki["cert"],
        "KAIROS_REDIS_SSL_KEYFILE": pki["key"],
    }
    assert redis_kwargs("rediss://:pw@127.0.0.1:6380/0", env) == {
        "ssl_ca_certs": pki["cert"],
        "ssl_certfile": pki["cert"],
        "ssl_keyfile": pki["key"],
    }
    assert redis_kwargs("rediss://127.0.0.1:6380/0", {}) == {}  # system CAs


def test_redis_tls_files_with_a_plain_url_are_refused_without_the_password(
    pki: dict[str, str],
) -> None:
    env = {"KAIROS_REDIS_SSL_CAFILE": pki["cert"]}
    with pytest.raises(SecuritySettingsError) as caught:
        redis_kwargs(f"redis://:{PASSWORD}@127.0.0.1:6379/0", env)
    text = str(caught.value)
    assert "KAIROS_REDIS_SSL_CAFILE is set but REDIS_URL" in text and "rediss://" in text
    assert PASSWORD not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        ("rediss://default:hunter2@cache:6380/1", "rediss://default:***@cache:6380/1"),
        ("https://TOKEN123@api.example/v1", "https://***@api.example/v1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (
            "https://qyapi.example/cgi-bin/webhook/send?key=abc-secret&debug=1",
            "https://qyapi.example/cgi-bin/webhook/send?key=***&debug=1",
        ),
        ("kafka://broker1:9092;broker2:9092", "kafka://broker1:9092;broker2:9092"),
    ],
)
def test_redact_url_masks_credentials_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_bad_setting_stops_a_command_with_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    monkeypatch.setenv("KAIROS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("KAIROS_KAFKA_SASL_USERNAME", raising=False)
    code = cli.main(["publish", str(events), "--bootstrap", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kairos publish: KAIROS_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
