"""Reaching Vault, and proving who we are: AppRole with a wrapped secret_id, or Kubernetes.

Each function here builds what one login needs and nothing more; the
session (:mod:`eventsvc.vault.session`) sends the request and keeps the
token. Token auth (dev only) needs no request and lives in the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import hvac
from pydantic import SecretStr

from eventsvc.settings import VaultSettings
from eventsvc.vault.errors import (
    VaultError,
    VaultUnavailable,
    WrappedSecretIdInvalid,
    as_vault_errors,
)


def https_address(vault: VaultSettings) -> str:
    """Vault's address; ValueError unless it is https://.

    Tokens and secret_ids must never cross the network in clear text, whatever
    the profile (settings only refuse plain http in prod, as one reason among others).
    """
    if vault.addr is None:
        raise ValueError("EVENTSVC_VAULT_ADDR is not set: the service is not using Vault")
    if not vault.addr.startswith("https://"):
        raise ValueError(f"Vault address must be https:// (got {vault.addr!r})")
    return vault.addr


def new_client(vault: VaultSettings, token: str) -> hvac.Client:
    """An hvac client verifying Vault's certificate; ``token=""`` sends no token.

    The address and the token are always passed explicitly: hvac falls back
    to ``$VAULT_ADDR`` and ``$VAULT_TOKEN`` when given None, and that token
    must not leak into an anonymous request.
    """
    verify: str | bool = str(vault.ca_file) if vault.ca_file else True
    return hvac.Client(
        url=https_address(vault), token=token, verify=verify, timeout=vault.request_timeout_s
    )


def read_secret_file(path: Path, what: str) -> str:
    """Read a one-line secret; the error names the file, never its content."""
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise VaultError(f"cannot read the {what} file {path}: {reason}") from None
    if not value:
        raise VaultError(f"the {what} file {path} is empty")
    return value


@dataclass(frozen=True)
class LoginRequest:
    """The path and body of a login call. The body holds a credential: no repr."""

    path: str
    payload: dict[str, str] = field(repr=False)


def kubernetes_login_request(vault: VaultSettings) -> LoginRequest:
    """Read the pod's service-account JWT and build the Kubernetes auth login.

    The kubelet rotates the projected token file, so it is read at every login.
    """
    if not vault.kubernetes_role:
        raise VaultError("Kubernetes auth needs EVENTSVC_VAULT_KUBERNETES_ROLE")
    jwt = read_secret_file(vault.kubernetes_jwt_file, "service-account token")
    return LoginRequest(
        path=f"auth/{vault.kubernetes_mount}/login",
        payload={"role": vault.kubernetes_role, "jwt": jwt},
    )


def approle_login_request(vault: VaultSettings, secret_id: SecretStr) -> LoginRequest:
    """Build the AppRole login from the role_id in settings and an unwrapped secret_id."""
    if not vault.role_id:
        raise VaultError("AppRole auth needs EVENTSVC_VAULT_ROLE_ID")
    return LoginRequest(
        path=f"auth/{vault.approle_mount}/login",
        payload={"role_id": vault.role_id, "secret_id": secret_id.get_secret_value()},
    )


def unwrap_secret_id(vault: VaultSettings) -> SecretStr:
    """Unwrap the secret_id delivered, response-wrapped, in the wrapped-secret_id file.

    The wrapping token is looked up first and must have been created by
    ``auth/<mount>/role/<role>/secret-id``: a token wrapping anything else is
    refused before it is unwrapped. A token that is unknown or already used
    means someone else may have unwrapped it: the error says to check the audit log.
    """
    if not vault.role_id or not vault.wrapped_secret_id_file:
        raise VaultError(
            "AppRole auth needs EVENTSVC_VAULT_ROLE_ID and EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE"
        )
    path_file = vault.wrapped_secret_id_file
    try:
        wrapping_token = read_secret_file(path_file, "wrapped secret_id")
    except VaultError as exc:
        raise WrappedSecretIdInvalid(f"{exc}; deliver a wrapped secret_id there") from None
    expected_path = f"auth/{vault.approle_mount}/role/{vault.approle_role}/secret-id"
    invalid = (
        f"Vault at {vault.addr}: the wrapping token in {path_file} is expired, already "
        f"used or unknown; deliver a new wrapped secret_id for {expected_path}, and check "
        "the audit log for who unwrapped it"
    )
    try:
        with as_vault_errors(vault, "lookup", "sys/wrapping/lookup", ()):
            info = new_client(vault, "").write_data(
                "sys/wrapping/lookup", data={"token": wrapping_token}
            )
    except VaultUnavailable:
        raise
    except VaultError:
        raise WrappedSecretIdInvalid(invalid) from None
    creation_path = str(info["data"]["creation_path"])
    if creation_path != expected_path:
        raise WrappedSecretIdInvalid(
            f"Vault at {vault.addr}: the wrapping token in {path_file} wraps {creation_path}, "
            f"not {expected_path}; refusing to unwrap it"
        )
    try:
        with as_vault_errors(vault, "unwrap", "sys/wrapping/unwrap", ()):
            unwrapped = new_client(vault, wrapping_token).sys.unwrap()
    except VaultUnavailable:
        raise
    except VaultError:
        raise WrappedSecretIdInvalid(invalid) from None
    return SecretStr(str(unwrapped["data"]["secret_id"]))
