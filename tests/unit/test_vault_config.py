"""Vault configuration: one nested settings model with flat variable names; the Kubernetes login.

No server needed: these check what the service reads from its environment
and what it would send, before any request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from eventsvc.credentials import open_vault_session
from eventsvc.settings import Settings, VaultSettings
from eventsvc.vault.errors import VaultError
from eventsvc.vault.login import kubernetes_login_request
from eventsvc.vault.session import VaultSession

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZXZlbnRzdmMifQ.c2ln"

# Every EVENTSVC_VAULT_* variable, with the field it sets and a value that differs
# from the default: README, vault/README.md, the dev stack and deployments set these.
VAULT_VARIABLES = {
    "EVENTSVC_VAULT_ADDR": ("addr", "https://vault.internal:8200"),
    "EVENTSVC_VAULT_CA_FILE": ("ca_file", Path("/etc/eventsvc/vault-ca.pem")),
    "EVENTSVC_VAULT_AUTH_METHOD": ("auth_method", "kubernetes"),
    "EVENTSVC_VAULT_ROLE_ID": ("role_id", "role-1234"),
    "EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE": ("wrapped_secret_id_file", Path("/run/wrapped")),
    "EVENTSVC_VAULT_APPROLE_MOUNT": ("approle_mount", "approle-prod"),
    "EVENTSVC_VAULT_APPROLE_ROLE": ("approle_role", "eventsvc-blue"),
    "EVENTSVC_VAULT_TOKEN_FILE": ("token_file", Path("/home/dev/.vault-token")),
    "EVENTSVC_VAULT_KUBERNETES_JWT_FILE": ("kubernetes_jwt_file", Path("/var/run/jwt")),
    "EVENTSVC_VAULT_KUBERNETES_ROLE": ("kubernetes_role", "eventsvc"),
    "EVENTSVC_VAULT_KUBERNETES_MOUNT": ("kubernetes_mount", "k8s-prod"),
    "EVENTSVC_VAULT_KV_MOUNT": ("kv_mount", "secret"),
    "EVENTSVC_VAULT_KV_PATH": ("kv_path", "eventsvc-blue"),
    "EVENTSVC_VAULT_PKI_MOUNT": ("pki_mount", "pki_blue"),
    "EVENTSVC_VAULT_PKI_CLIENT_ROLE": ("pki_client_role", "mongo-client"),
    "EVENTSVC_VAULT_PKI_SERVER_ROLE": ("pki_server_role", "api-server"),
    "EVENTSVC_VAULT_MONGO_CLIENT_COMMON_NAME": ("mongo_client_common_name", "eventsvc-blue"),
    "EVENTSVC_VAULT_SERVER_COMMON_NAME": ("server_common_name", "api.internal"),
    "EVENTSVC_VAULT_SERVER_ALT_NAMES": ("server_alt_names", ("localhost", "api.internal")),
    "EVENTSVC_VAULT_SERVER_IP_SANS": ("server_ip_sans", ("127.0.0.1", "::1")),
    "EVENTSVC_VAULT_CERTIFICATE_TTL": ("certificate_ttl", "2h"),
    "EVENTSVC_VAULT_REQUEST_TIMEOUT_S": ("request_timeout_s", 2.5),
}
ENVIRONMENT_SPELLING = {
    "EVENTSVC_VAULT_SERVER_ALT_NAMES": "localhost, api.internal",
    "EVENTSVC_VAULT_SERVER_IP_SANS": "127.0.0.1,::1",
}


def test_every_vault_variable_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, (_, value) in VAULT_VARIABLES.items():
        monkeypatch.setenv(name, ENVIRONMENT_SPELLING.get(name, str(value)))
    monkeypatch.setenv("EVENTSVC_RUNTIME_DIR", "/run/eventsvc")
    monkeypatch.setenv("EVENTSVC_MONGODB_AUTH_MODE", "scram")
    settings = Settings()
    for name, (field, value) in VAULT_VARIABLES.items():
        assert getattr(settings.vault, field) == value, name
    assert set(VaultSettings.model_fields) == {field for field, _ in VAULT_VARIABLES.values()}
    assert settings.runtime_dir == Path("/run/eventsvc")
    assert settings.mongodb_auth_mode == "scram"
    assert settings.uses_vault


def test_defaults_are_the_bootstrap_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSVC_VAULT_ADDR", "https://vault.internal:8200")
    vault = Settings().vault
    assert (vault.pki_mount, vault.pki_client_role) == ("pki_int", "eventsvc-mongo-client")
    assert (vault.kv_mount, vault.kv_path) == ("kv", "eventsvc")
    assert vault.server_alt_names == ("localhost",)


def test_an_unknown_vault_variable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSVC_VAULT_ROLEID", "a typo")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("vault", "roleid")


def test_flat_names_given_in_code_mean_the_same() -> None:
    """The dev stack builds Settings from a mapping of the variables' names, lower-cased."""
    flat = Settings.model_validate(
        {"vault_addr": "https://vault.internal:8200", "vault_server_ip_sans": "127.0.0.1,::1"}
    )
    nested = Settings(
        vault=VaultSettings(addr="https://vault.internal:8200", server_ip_sans=("127.0.0.1", "::1"))
    )
    assert flat == nested
    both = Settings(vault=VaultSettings(role_id="nested"), vault_role_id="flat")
    assert both.vault.role_id == "flat"


def test_plain_http_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    settings = Settings(profile="test", vault_addr="http://vault:8200", runtime_dir=tmp_path)
    with pytest.raises(ValueError, match="https://"):
        open_vault_session(settings)
    assert list(tmp_path.iterdir()) == []


def test_token_auth_is_refused_outside_dev_before_any_request(tmp_path: Path) -> None:
    settings = Settings(
        profile="test",
        vault_addr="https://127.0.0.1:9",
        vault_auth_method="token",
        runtime_dir=tmp_path,
    )
    with pytest.raises(VaultError, match="dev profile only"):
        open_vault_session(settings)
    assert list(tmp_path.iterdir()) == []


def test_kubernetes_login_reads_the_service_account_token(tmp_path: Path) -> None:
    jwt_file = tmp_path / "token"
    jwt_file.write_text(JWT + "\n")
    vault = VaultSettings(
        addr="https://vault.internal:8200",
        auth_method="kubernetes",
        kubernetes_role="eventsvc",
        kubernetes_mount="k8s-prod",
        kubernetes_jwt_file=jwt_file,
    )
    request = kubernetes_login_request(vault)
    assert request.path == "auth/k8s-prod/login"
    assert request.payload == {"role": "eventsvc", "jwt": JWT}
    assert JWT not in repr(request)


def test_kubernetes_login_errors_name_the_file_not_the_token(tmp_path: Path) -> None:
    vault = VaultSettings(
        addr="https://vault.internal:8200",
        auth_method="kubernetes",
        kubernetes_role="eventsvc",
        kubernetes_jwt_file=tmp_path / "missing",
    )
    with pytest.raises(VaultError, match="missing"):
        kubernetes_login_request(vault)
    (tmp_path / "missing").write_text("  \n")
    with pytest.raises(VaultError, match="is empty"):
        kubernetes_login_request(vault)
    without_role = VaultSettings(addr="https://vault.internal:8200")
    with pytest.raises(VaultError, match="KUBERNETES_ROLE"):
        kubernetes_login_request(without_role)


def test_a_session_needs_an_address(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="EVENTSVC_VAULT_ADDR"):
        VaultSession.open(VaultSettings(), runtime_parent=tmp_path)
