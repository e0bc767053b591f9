"""A logged-in Vault session: the token, the credentials it issues, and their revocation.

Reading order::

    session = VaultSession.open(settings.vault, runtime_parent=..., mongodb_auth_mode="x509")
    mongo = session.issue_mongo_credential()   # X.509 client cert, or SCRAM from KV
    tls = session.issue_server_tls()           # the API's HTTPS cert, key and CA chain
    ...                                        # eventsvc.vault.keeper keeps them fresh
    session.shutdown()                         # revokes certs and token, removes files

:meth:`VaultSession.open` makes the session and logs in for the first time;
:meth:`VaultSession.log_in` gets a new token for a session that has one (or
lost it). PKI certificates are not renewable leases: the session records when
each is due for re-issue (:meth:`VaultSession.refresh_at`), and the keeper
re-issues it then.

Every login writes the new token to the runtime directory's token file,
which gunicorn workers read before they sign or anchor a checkpoint (see
:mod:`eventsvc.vault.tokenfile`), then revokes the token it replaced.

Secrets (tokens, secret_ids, private keys, passwords) are never logged, put in
exception messages or reprs: they live in local variables, ``SecretStr`` or
0600 files in a 0700 runtime directory that :meth:`VaultSession.shutdown`
removes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hvac
from cryptography import x509
from pydantic import SecretStr

from eventsvc.files import write_private_file
from eventsvc.metrics import set_certificate_expiry, set_vault_token_ttl
from eventsvc.settings import MongoAuthMode, VaultSettings
from eventsvc.vault.anchors import VaultCheckpointAnchor
from eventsvc.vault.errors import VaultError, VaultPermissionDenied, as_vault_errors
from eventsvc.vault.issued import (
    REFRESH_FRACTION,
    MongoCredential,
    MongoScramCredential,
    MongoX509Credential,
    Refresh,
    ServerTLS,
    TokenState,
)
from eventsvc.vault.login import (
    LoginRequest,
    approle_login_request,
    https_address,
    kubernetes_login_request,
    new_client,
    read_secret_file,
    unwrap_secret_id,
)
from eventsvc.vault.tokenfile import TOKEN_FILE_NAME, TokenFileClients
from eventsvc.vault.transit import TransitCheckpointSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _IssuedCertificate:
    """Kept until shutdown so the certificate can be revoked (revoke-with-key)."""

    serial_number: str
    expires_at: datetime
    private_key: SecretStr = field(repr=False)


# --- The session -------------------------------------------------------------


class VaultSession:
    """A logged-in Vault client plus the credentials it issued.

    Make one with :meth:`open`. Every request goes through :meth:`read` or
    :meth:`write`, which map failures to :class:`VaultError` subclasses.
    Once a lease keeper runs, only its thread uses the session: no lock.
    """

    def __init__(
        self,
        settings: VaultSettings,
        *,
        runtime_parent: Path | None = None,
        mongodb_auth_mode: MongoAuthMode = "x509",
        allow_token_auth: bool = False,
    ) -> None:
        """Check the settings and create the runtime directory; no request yet.

        ValueError for an address that is not https://; VaultError for token
        auth where it is not allowed (the service allows it in the dev profile only).
        """
        https_address(settings)
        if settings.auth_method == "token" and not allow_token_auth:
            raise VaultError("EVENTSVC_VAULT_AUTH_METHOD=token is allowed in the dev profile only")
        self.settings = settings
        self.mongodb_auth_mode = mongodb_auth_mode
        self._client = new_client(settings, "")
        self.token: TokenState | None = None
        self.runtime_dir = _private_runtime_dir(runtime_parent or Path(tempfile.gettempdir()))
        self.token_file = self.runtime_dir / TOKEN_FILE_NAME
        """The current token, for workers forked before a re-login (0600)."""
        self.mongo_credential: MongoCredential | None = None
        self.server_tls: ServerTLS | None = None
        self._mongo_refresh_at: float | None = None
        self._server_tls_refresh_at: float | None = None
        self._issued: list[_IssuedCertificate] = []

    def __repr__(self) -> str:
        return f"VaultSession(addr={self.settings.addr!r}, auth={self.settings.auth_method!r})"

    @classmethod
    def open(
        cls,
        settings: VaultSettings,
        *,
        runtime_parent: Path | None = None,
        mongodb_auth_mode: MongoAuthMode = "x509",
        allow_token_auth: bool = False,
    ) -> VaultSession:
        """A new session, logged in; on failure nothing is left behind (no runtime directory).

        ``runtime_parent`` holds the session's own 0700 directory (default: the
        temp dir); ``mongodb_auth_mode`` says which MongoDB credential to issue.
        """
        session = cls(
            settings,
            runtime_parent=runtime_parent,
            mongodb_auth_mode=mongodb_auth_mode,
            allow_token_auth=allow_token_auth,
        )
        try:
            session.log_in()
        except BaseException:
            shutil.rmtree(session.runtime_dir, ignore_errors=True)
            raise
        return session

    # -- requests --

    def read(self, path: str) -> dict[str, Any]:
        """GET ``path`` with the session's token."""
        with self._errors("read", path):
            response = self._client.read(path)
        if response is None:
            raise VaultError(f"Vault at {self.settings.addr}: read {path}: nothing there")
        result: dict[str, Any] = response
        return result

    def list_keys(self, path: str) -> list[str]:
        """LIST ``path`` with the session's token; [] when there is nothing under it."""
        with self._errors("list", path):
            response = self._client.list(path)
        if not response:
            return []
        return [str(key) for key in response["data"]["keys"]]

    def read_data(self, path: str) -> dict[str, Any]:
        """The ``data`` of a KV v2 read (``<mount>/data/<path>``)."""
        data: dict[str, Any] = self.read(path)["data"]["data"]
        return data

    def write(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        """POST ``data`` to ``path`` with the session's token; {} for an empty answer."""
        with self._errors("update", path):
            response = self._client.write_data(path, data=data)
        return response if isinstance(response, dict) else {}

    def _errors(self, operation: str, path: str) -> contextlib.AbstractContextManager[None]:
        policies = self.token.policies if self.token else ()
        return as_vault_errors(self.settings, operation, path, policies)

    # -- token --

    def log_in(self) -> None:
        """Log in with the configured method, swap in the new token, revoke the old one.

        The new token is in the token file before the old one is revoked, so
        a worker refused on the old token finds the new one at its retry.
        """
        method = self.settings.auth_method
        if method == "token":
            self._use_given_token()
            return
        request = self._login_request()
        with as_vault_errors(self.settings, "login", request.path, ()):
            response = new_client(self.settings, "").write_data(request.path, data=request.payload)
        auth: dict[str, Any] = response["auth"]
        previous = self._client if self.token is not None else None
        token = str(auth["client_token"])
        self._client = new_client(self.settings, token)
        self.token = TokenState.from_auth(auth)
        write_private_file(self.token_file, f"{token}\n")
        log.info(
            "vault: logged in with %s at %s (policies %s, ttl %ss)",
            method,
            self.settings.addr,
            ",".join(self.token.policies),
            self.token.ttl_s,
        )
        set_vault_token_ttl(self.token.ttl_s)
        if previous is not None:
            self._revoke_replaced(previous)

    def _revoke_replaced(self, previous: hvac.Client) -> None:
        """Revoke the token a new login replaced: no live token is left that nobody renews."""
        try:
            with as_vault_errors(self.settings, "update", "auth/token/revoke-self", ()):
                previous.write_data("auth/token/revoke-self", data={})
        except VaultPermissionDenied:
            log.info("vault: the replaced token had already expired or been revoked")
        except VaultError as exc:
            log.warning("vault: could not revoke the replaced token: %s", exc)
        else:
            log.info("vault: replaced token revoked")

    def _login_request(self) -> LoginRequest:
        if self.settings.auth_method == "approle":
            return approle_login_request(self.settings, unwrap_secret_id(self.settings))
        return kubernetes_login_request(self.settings)

    def _use_given_token(self) -> None:
        """Dev only: use a token from a file (default ``$VAULT_TOKEN``), never revoke it."""
        if self.settings.token_file is not None:
            token = read_secret_file(self.settings.token_file, "Vault token")
        else:
            token = os.environ.get("VAULT_TOKEN", "")
            if not token:
                raise VaultError("token auth needs a token file or VAULT_TOKEN")
        self._client = new_client(self.settings, token)
        write_private_file(self.token_file, f"{token}\n")
        data = self.read("auth/token/lookup-self")["data"]
        self.token = TokenState(
            accessor=str(data["accessor"]),
            policies=tuple(data.get("policies") or ()),
            ttl_s=int(data["ttl"]),
            renewable=bool(data["renewable"]),
            obtained_at=time.monotonic(),
            increment_s=int(data.get("creation_ttl") or data["ttl"]),
        )
        log.info("vault: using a given token at %s (dev profile)", self.settings.addr)

    def renew_or_log_in(self) -> None:
        """Renew the token while renewal extends it; otherwise (or if it died) log in again."""
        if self.token is None or not self.token.worth_renewing:
            self.log_in()
            return
        try:
            response = self.write(
                "auth/token/renew-self", {"increment": f"{self.token.increment_s}s"}
            )
        except VaultPermissionDenied:
            log.warning("vault: token renewal refused (expired or revoked); logging in again")
            self.log_in()
            return
        self.token = TokenState.from_auth(response["auth"], increment_s=self.token.increment_s)
        log.info("vault: token renewed (ttl %ss)", self.token.ttl_s)
        set_vault_token_ttl(self.token.ttl_s)

    # -- credentials --

    def issue_mongo_credential(self) -> MongoCredential:
        """Issue a MongoDB client certificate (x509) or read the SCRAM user (scram)."""
        if self.mongodb_auth_mode == "scram":
            secret = self.read_app_secret("mongodb")
            credential: MongoCredential = MongoScramCredential(
                username=secret["username"], password=SecretStr(secret["password"])
            )
        else:
            credential = self._issue_mongo_certificate()
        self.mongo_credential = credential
        return credential

    def _issue_mongo_certificate(self) -> MongoX509Credential:
        data, refresh_at = self._issue(
            self.settings.pki_client_role, {"common_name": self.settings.mongo_client_common_name}
        )
        cert_key_file = self.runtime_dir / "mongo-client.pem"
        ca_file = self.runtime_dir / "mongo-ca.pem"
        write_private_file(cert_key_file, f"{data['certificate']}\n{data['private_key']}\n")
        write_private_file(ca_file, _ca_chain_pem(data))
        certificate = x509.load_pem_x509_certificate(str(data["certificate"]).encode("ascii"))
        self._mongo_refresh_at = refresh_at
        log.info("vault: issued MongoDB client certificate %s", data["serial_number"])
        set_certificate_expiry("mongodb_client", _expiration(data))
        return MongoX509Credential(
            cert_key_file=cert_key_file,
            ca_file=ca_file,
            subject=certificate.subject.rfc4514_string(),
            serial_number=str(data["serial_number"]),
            expires_at=_expiration(data),
        )

    def issue_server_tls(self) -> ServerTLS:
        """Issue the API's HTTPS certificate for the configured names."""
        data, refresh_at = self._issue(
            self.settings.pki_server_role,
            {
                "common_name": self.settings.server_common_name,
                "alt_names": ",".join(self.settings.server_alt_names),
                "ip_sans": ",".join(self.settings.server_ip_sans),
            },
        )
        tls = ServerTLS(
            cert_file=self.runtime_dir / "server-cert.pem",
            key_file=self.runtime_dir / "server-key.pem",
            ca_file=self.runtime_dir / "server-ca.pem",
            serial_number=str(data["serial_number"]),
            expires_at=_expiration(data),
        )
        write_private_file(tls.key_file, f"{data['private_key']}\n")
        write_private_file(tls.cert_file, f"{data['certificate']}\n{data['issuing_ca']}\n")
        write_private_file(tls.ca_file, _ca_chain_pem(data))
        self.server_tls = tls
        self._server_tls_refresh_at = refresh_at
        log.info("vault: issued API server certificate %s", tls.serial_number)
        set_certificate_expiry("https_server", tls.expires_at)
        return tls

    def _issue(self, role: str, request: dict[str, str]) -> tuple[dict[str, Any], float]:
        """Issue from ``<pki>/issue/<role>``; remember the key for revocation at shutdown."""
        if self.settings.certificate_ttl:
            request = {**request, "ttl": self.settings.certificate_ttl}
        issued_at = time.time()
        data: dict[str, Any] = self.write(f"{self.settings.pki_mount}/issue/{role}", request)[
            "data"
        ]
        expires_at = _expiration(data)
        self._issued = [cert for cert in self._issued if cert.expires_at > datetime.now(UTC)]
        self._issued.append(
            _IssuedCertificate(
                serial_number=str(data["serial_number"]),
                expires_at=expires_at,
                private_key=SecretStr(str(data["private_key"])),
            )
        )
        lifetime_s = max(expires_at.timestamp() - issued_at, 0.0)
        return data, time.monotonic() + REFRESH_FRACTION * lifetime_s

    def checkpoint_signer(self) -> TransitCheckpointSigner:
        """A signer for audit checkpoints (transit, sign only) on the session's current token.

        The token is read from the token file before each signature, in
        whichever process signs: a worker forked before the lease keeper's
        re-login signs with the new token, not the revoked one.
        """
        return TransitCheckpointSigner(TokenFileClients(self.settings, self.token_file))

    def checkpoint_anchor(self) -> VaultCheckpointAnchor:
        """Anchors checkpoints in Vault KV (create-only) on the session's current token."""
        return VaultCheckpointAnchor(TokenFileClients(self.settings, self.token_file))

    def read_app_secret(self, name: str) -> dict[str, str]:
        """Read ``<kv_mount>/data/<kv_path>/<name>`` (KV v2, latest version)."""
        path = f"{self.settings.kv_mount}/data/{self.settings.kv_path}/{name}"
        data: dict[str, str] = self.read(path)["data"]["data"]
        return data

    def refresh_at(self, what: Refresh) -> float | None:
        """Monotonic time at which ``what`` is due, or None if it needs no refresh."""
        if what is Refresh.TOKEN:
            return self.token.refresh_at if self.token else None
        if what is Refresh.MONGO_CREDENTIAL:
            return self._mongo_refresh_at
        return self._server_tls_refresh_at

    # -- shutdown --

    def shutdown(self) -> None:
        """Revoke the certificates and the token this session obtained; remove its files.

        Best effort: each failure is logged and the rest still happens. A token
        given in token auth (dev) belongs to the developer and is not revoked.
        """
        for cert in self._issued:
            if cert.expires_at <= datetime.now(UTC):
                continue
            try:
                self.write(
                    f"{self.settings.pki_mount}/revoke-with-key",
                    {
                        "serial_number": cert.serial_number,
                        "private_key": cert.private_key.get_secret_value(),
                    },
                )
                log.info("vault: revoked certificate %s", cert.serial_number)
            except VaultError as exc:
                log.warning("vault: could not revoke certificate %s: %s", cert.serial_number, exc)
        self._issued = []
        if self.token is not None and self.settings.auth_method != "token":
            try:
                self.write("auth/token/revoke-self", {})
                log.info("vault: token revoked")
            except VaultError as exc:
                log.warning("vault: could not revoke the token: %s", exc)
        self.token = None
        self._client = new_client(self.settings, "")
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _private_runtime_dir(parent: Path) -> Path:
    """A fresh 0700 directory for this process only (several instances may share ``parent``)."""
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="eventsvc-vault-", dir=parent))


def _expiration(data: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(data["expiration"]), tz=UTC)


def _ca_chain_pem(data: dict[str, Any]) -> str:
    chain = data.get("ca_chain") or [data["issuing_ca"]]
    return "\n".join(str(pem).strip() for pem in chain) + "\n"
