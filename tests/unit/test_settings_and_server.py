"""Production settings refuse unsafe values; gunicorn options follow settings."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from eventsvc.credentials import Credentials
from eventsvc.server import gunicorn_options
from eventsvc.settings import Rate, Settings, UnsafeSettingsError
from support import CHECKPOINT_SIGNER, coverage_env

KEYS = {
    "token_pepper": SecretStr("p" * 32),
    "audit_key": SecretStr("k" * 32),
    "checkpoint_signer": CHECKPOINT_SIGNER,
}


def test_prod_refuses_unsafe_settings_listing_every_reason() -> None:
    unsafe = Settings(
        profile="prod",
        debug=True,
        mongodb_tls=False,
        mongodb_password=SecretStr("pw"),
        vault_auth_method="token",
    )
    with pytest.raises(UnsafeSettingsError) as caught:
        unsafe.check()
    message = str(caught.value)
    for expected in [
        "EVENTSVC_DEBUG",
        "EVENTSVC_VAULT_ADDR",
        "EVENTSVC_MONGODB_TLS",
        "EVENTSVC_MONGODB_PASSWORD",
        "token is for the dev profile",
    ]:
        assert expected in message
    assert "pw" not in message.split(":", 1)[1].replace("password", "")


def test_prod_accepts_vault_approle_over_https(tmp_path: Path) -> None:
    Settings(
        profile="prod",
        vault_addr="https://vault:8200",
        vault_role_id="r",
        vault_wrapped_secret_id_file=tmp_path / "wrapped",
    ).check()


def test_plain_http_vault_is_refused_in_prod(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettingsError, match="https://"):
        Settings(
            profile="prod",
            vault_addr="http://vault:8200",
            vault_role_id="r",
            vault_wrapped_secret_id_file=tmp_path / "w",
        ).check()


def test_credentials_in_host_list_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(mongodb_hosts="user:pw@db:27017")


def test_gunicorn_options_for_https_and_mtls(tmp_path: Path) -> None:
    settings = Settings(
        profile="test",
        workers=3,
        tls_client_ca_file=tmp_path / "ca.pem",
        tls_require_client_cert=True,
    )
    credentials = Credentials(**KEYS, tls_cert_file=tmp_path / "c", tls_key_file=tmp_path / "k")
    options = gunicorn_options(settings, credentials)
    assert options["worker_class"] == "eventsvc.tlsworker.ClientCertThreadWorker"
    assert options["workers"] == 3
    assert options["certfile"] == str(tmp_path / "c")
    assert options["cert_reqs"] == ssl.CERT_REQUIRED
    assert callable(options["ssl_context"])


def test_no_certificate_means_no_tls_options() -> None:
    options = gunicorn_options(Settings(profile="test"), Credentials(**KEYS))
    assert "certfile" not in options


def test_server_exits_2_with_one_line_on_unsafe_prod_config(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventsvc.server"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            **coverage_env(),
            "EVENTSVC_PROFILE": "prod",
            "EVENTSVC_DEBUG": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("eventsvc: configuration error: unsafe production settings")
    assert "Traceback" not in result.stderr


def test_server_reports_invalid_values_by_variable_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventsvc.server"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            **coverage_env(),
            "EVENTSVC_MAX_BODY_BYTES": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "EVENTSVC_MAX_BODY_BYTES" in result.stderr


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/minute", Rate(600, 60)),
        ("600 per minute", Rate(600, 60)),
        (" 5/second ", Rate(5, 1)),
        ("1/hour", Rate(1, 3600)),
        ("100000/day", Rate(100000, 86400)),
    ],
)
def test_rates_are_count_per_period(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate
    assert Settings(profile="test", rate_limit_per_token=text).rate_limit_per_token == text


@pytest.mark.parametrize("text", ["", "lots", "0/minute", "10/fortnight", "10/2 minutes", "-1/day"])
def test_a_malformed_rate_is_refused_at_start(text: str) -> None:
    with pytest.raises(ValidationError, match="COUNT/PERIOD"):
        Settings(profile="test", rate_limit_per_address=text)
