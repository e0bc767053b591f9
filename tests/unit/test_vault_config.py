"""VaultConfig from settings, and building the Kubernetes login (no server needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from eventsvc.settings import Settings
from eventsvc.vault import (
    VaultConfig,
    VaultError,
    VaultSession,
    kubernetes_login_request,
    write_private_file,
)

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZXZlbnRzdmMifQ.c2ln"


def test_config_from_settings_takes_every_vault_setting(tmp_path: Path) -> None:
    settings = Settings(
        profile="test",
        vault_addr="https://vault.internal:8200",
        vault_ca_file=tmp_path / "ca.pem",
        vault_role_id="role",
        vault_wrapped_secret_id_file=tmp_path / "wrapped",
        vault_server_alt_names="localhost, api.internal",
        vault_server_ip_sans="127.0.0.1,::1",
        mongodb_auth_mode="scram",
        runtime_dir=tmp_path / "run",
        vault_approle_role="eventsvc-blue",
    )
    config = VaultConfig.from_settings(settings)
    assert config.addr == "https://vault.internal:8200"
    assert config.server_alt_names == ("localhost", "api.internal")
    assert config.server_ip_sans == ("127.0.0.1", "::1")
    assert config.mongodb_auth_mode == "scram"
    assert config.approle_role == "eventsvc-blue"
    assert config.runtime_dir == tmp_path / "run"
    assert (config.pki_mount, config.pki_client_role) == ("pki_int", "eventsvc-mongo-client")


def test_config_needs_a_vault_address() -> None:
    with pytest.raises(ValueError, match="EVENTSVC_VAULT_ADDR"):
        VaultConfig.from_settings(Settings(profile="test"))


def test_kubernetes_login_reads_the_service_account_token(tmp_path: Path) -> None:
    jwt_file = tmp_path / "token"
    jwt_file.write_text(JWT + "\n")
    config = VaultConfig(
        addr="https://vault.internal:8200",
        ca_file=None,
        runtime_dir=tmp_path,
        auth_method="kubernetes",
        kubernetes_role="eventsvc",
        kubernetes_mount="k8s-prod",
        kubernetes_jwt_file=jwt_file,
    )
    request = kubernetes_login_request(config)
    assert request.path == "auth/k8s-prod/login"
    assert request.payload == {"role": "eventsvc", "jwt": JWT}
    assert JWT not in repr(request)


def test_kubernetes_login_errors_name_the_file_not_the_token(tmp_path: Path) -> None:
    config = VaultConfig(
        addr="https://vault.internal:8200",
        ca_file=None,
        runtime_dir=tmp_path,
        auth_method="kubernetes",
        kubernetes_role="eventsvc",
        kubernetes_jwt_file=tmp_path / "missing",
    )
    with pytest.raises(VaultError, match="missing"):
        kubernetes_login_request(config)
    (tmp_path / "missing").write_text("  \n")
    with pytest.raises(VaultError, match="is empty"):
        kubernetes_login_request(config)
    without_role = VaultConfig(
        addr="https://vault.internal:8200", ca_file=None, runtime_dir=tmp_path
    )
    with pytest.raises(VaultError, match="KUBERNETES_ROLE"):
        kubernetes_login_request(without_role)


def test_token_auth_is_refused_before_any_request(tmp_path: Path) -> None:
    config = VaultConfig(
        addr="https://127.0.0.1:9", ca_file=None, runtime_dir=tmp_path, auth_method="token"
    )
    with pytest.raises(VaultError, match="dev profile only"):
        VaultSession.login(config)
    assert list(tmp_path.iterdir()) == []


def test_private_files_are_0600_and_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    write_private_file(target, "one")
    write_private_file(target, "two")
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["key.pem"]
