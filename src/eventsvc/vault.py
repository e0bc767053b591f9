"""The Vault (or OpenBao) lifecycle of one eventsvc process, in one module.

Reading order, top to bottom::

    config = VaultConfig.from_settings(settings)
    session = VaultSession.login(config, allow_token_auth=settings.profile == "dev")
    mongo = session.issue_mongo_credential()   # X.509 client cert, or SCRAM from KV
    tls = session.issue_server_tls()           # the API's HTTPS cert, key and CA chain
    keeper = LeaseKeeper(session, on_mongo_credential=..., on_server_tls=...)
    keeper.start()                             # renews, logs in again, re-issues
    ...
    keeper.stop()
    session.shutdown()                         # revokes certs and token, removes files

Login is AppRole with a response-wrapped secret_id (the default), Kubernetes, or
a plain token (dev only). The :class:`LeaseKeeper` thread renews the token at
2/3 of its TTL, logs in again when renewal cannot extend it, and re-issues
certificates at 2/3 of their lifetime (PKI certificates are not renewable).
Its callbacks are the only place where credentials change hands. Errors are
retried with exponential backoff and jitter, and logged; they never kill the
process.

Once the keeper runs, only its thread talks to Vault through the session; the
caller reads the current credentials it is handed. So there is no lock.

Secrets (tokens, secret_ids, private keys, passwords) are never logged, put in
exception messages or reprs: they live in local variables, ``SecretStr`` or
0600 files in a 0700 runtime directory that :meth:`VaultSession.shutdown`
removes. Every error is a :class:`VaultError` whose message is one actionable
line naming the Vault address, the path and the policy involved.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests
from cryptography import x509
from pydantic import SecretStr

from eventsvc.metrics import set_certificate_expiry, set_vault_token_ttl
from eventsvc.settings import MongoAuthMode, Settings, VaultAuthMethod

log = logging.getLogger(__name__)

APP_POLICY = "eventsvc-app"
"""The policy the service's token is expected to carry (vault/policies/eventsvc-app.hcl)."""

KUBERNETES_JWT_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

REFRESH_FRACTION = 2 / 3
"""Refresh a token or certificate when this fraction of its lifetime has passed."""


# --- Errors ------------------------------------------------------------------


class VaultError(Exception):
    """A Vault operation failed. The message is one line and never holds a secret."""


class VaultUnavailable(VaultError):
    """Vault cannot be reached, or answered 5xx: retrying later may help."""


class VaultSealed(VaultUnavailable):
    """Vault is reachable but sealed: an operator must unseal it."""


class VaultPermissionDenied(VaultError):
    """The token's policies do not allow the request, or the token is no longer valid."""


class WrappedSecretIdInvalid(VaultError):
    """The wrapping token is missing, expired, already used, or not a secret_id for our role."""


# --- Configuration -----------------------------------------------------------


@dataclass(frozen=True)
class VaultConfig:
    """Where Vault is and what to ask it for. Holds no secret, only file paths."""

    addr: str
    ca_file: Path | None
    runtime_dir: Path
    auth_method: VaultAuthMethod = "approle"
    role_id: str | None = None
    wrapped_secret_id_file: Path | None = None
    approle_mount: str = "approle"
    approle_role: str = "eventsvc"
    token_file: Path | None = None
    kubernetes_role: str | None = None
    kubernetes_mount: str = "kubernetes"
    kubernetes_jwt_file: Path = KUBERNETES_JWT_FILE
    kv_mount: str = "kv"
    kv_path: str = "eventsvc"
    pki_mount: str = "pki_int"
    pki_client_role: str = "eventsvc-mongo-client"
    pki_server_role: str = "eventsvc-api-server"
    mongo_client_common_name: str = "eventsvc"
    server_common_name: str = "localhost"
    server_alt_names: tuple[str, ...] = ("localhost",)
    server_ip_sans: tuple[str, ...] = ("127.0.0.1",)
    mongodb_auth_mode: MongoAuthMode = "x509"
    certificate_ttl: str | None = None
    """Requested certificate TTL (e.g. ``"2h"``); None uses the PKI role's default."""
    request_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        # Tokens and secret_ids must never cross the network in clear text.
        if not self.addr.startswith("https://"):
            raise ValueError(f"Vault address must be https:// (got {self.addr!r})")

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultConfig:
        """Build the config from service settings."""
        if settings.vault_addr is None:
            raise ValueError("EVENTSVC_VAULT_ADDR is not set: the service is not using Vault")
        return cls(
            addr=settings.vault_addr,
            ca_file=settings.vault_ca_file,
            runtime_dir=settings.runtime_dir or Path(tempfile.gettempdir()),
            auth_method=settings.vault_auth_method,
            role_id=settings.vault_role_id,
            wrapped_secret_id_file=settings.vault_wrapped_secret_id_file,
            approle_mount=settings.vault_approle_mount,
            approle_role=settings.vault_approle_role,
            token_file=settings.vault_token_file,
            kubernetes_role=settings.vault_kubernetes_role,
            kubernetes_mount=settings.vault_kubernetes_mount,
            kubernetes_jwt_file=settings.vault_kubernetes_jwt_file,
            kv_mount=settings.vault_kv_mount,
            kv_path=settings.vault_kv_path,
            pki_mount=settings.vault_pki_mount,
            pki_client_role=settings.vault_pki_client_role,
            pki_server_role=settings.vault_pki_server_role,
            server_common_name=settings.vault_server_common_name,
            server_alt_names=_split_csv(settings.vault_server_alt_names),
            server_ip_sans=_split_csv(settings.vault_server_ip_sans),
            mongodb_auth_mode=settings.mongodb_auth_mode,
        )


def _split_csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


# --- What the caller receives ------------------------------------------------


@dataclass(frozen=True)
class MongoX509Credential:
    """A MongoDB client certificate: log in as ``subject`` with MONGODB-X509."""

    cert_key_file: Path
    """PEM certificate then private key, mode 0600 (pymongo ``tlsCertificateKeyFile``)."""
    ca_file: Path
    """The CA chain that issued it, which also issued mongod's server certificate."""
    subject: str
    """RFC 4514 subject, the MongoDB user name in ``$external``."""
    serial_number: str
    expires_at: datetime


@dataclass(frozen=True)
class MongoScramCredential:
    """A MongoDB SCRAM-SHA-256 user and password read from KV v2."""

    username: str
    password: SecretStr


MongoCredential = MongoX509Credential | MongoScramCredential


@dataclass(frozen=True)
class ServerTLS:
    """The API's HTTPS certificate, as files gunicorn can load."""

    cert_file: Path
    """Leaf certificate followed by the issuing CA."""
    key_file: Path
    ca_file: Path
    """The full CA chain (issuing CA and root), for clients and client-certificate checks."""
    serial_number: str
    expires_at: datetime


# --- Small helpers -----------------------------------------------------------


def write_private_file(path: Path, content: str) -> None:
    """Write ``content`` with mode 0600, atomically, so no reader sees half a key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
    os.replace(tmp, path)


def _read_secret_file(path: Path, what: str) -> str:
    """Read a one-line secret; the error names the file, never its content."""
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise VaultError(f"cannot read the {what} file {path}: {reason}") from None
    if not value:
        raise VaultError(f"the {what} file {path} is empty")
    return value


def _new_client(config: VaultConfig, token: str) -> hvac.Client:
    """An hvac client verifying Vault's certificate; ``token=""`` sends no token.

    The token is always passed explicitly: hvac falls back to ``$VAULT_TOKEN``
    when given None, and that token must not leak into an anonymous request.
    """
    verify: str | bool = str(config.ca_file) if config.ca_file else True
    return hvac.Client(
        url=config.addr, token=token, verify=verify, timeout=config.request_timeout_s
    )


def _vault_reason(exc: hvac.exceptions.VaultError) -> str:
    errors = getattr(exc, "errors", None) or [str(exc) or type(exc).__name__]
    return "; ".join(str(error).strip().replace("\n", " ") for error in errors)


@contextlib.contextmanager
def _vault_errors(
    config: VaultConfig, operation: str, path: str, policies: tuple[str, ...]
) -> Iterator[None]:
    """Turn hvac/requests exceptions into one-line :class:`VaultError` subclasses.

    ``from None``: the original exception is not chained, so no library
    message (which could quote a request) reaches a log through a traceback.
    """
    where = f"Vault at {config.addr}: {operation} {path}"
    policy_list = ", ".join(policies) or APP_POLICY
    try:
        yield
    except requests.exceptions.SSLError:
        raise VaultUnavailable(
            f"{where}: TLS verification failed; check the CA file ({config.ca_file})"
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        raise VaultUnavailable(
            f"{where}: unreachable; check the address and that the server runs"
        ) from None
    except OSError:
        # requests raises a bare OSError when the CA file is missing or unreadable.
        raise VaultUnavailable(f"{where}: cannot read the CA file ({config.ca_file})") from None
    except hvac.exceptions.VaultDown as exc:
        if "sealed" in _vault_reason(exc).lower():
            raise VaultSealed(f"{where}: Vault is sealed; an operator must unseal it") from None
        raise VaultUnavailable(f"{where}: Vault is down ({_vault_reason(exc)})") from None
    except hvac.exceptions.Forbidden:
        raise VaultPermissionDenied(
            f"{where}: permission denied for policies [{policy_list}]; "
            "the path is outside the policy, or the token expired or was revoked"
        ) from None
    except (
        hvac.exceptions.InternalServerError,
        hvac.exceptions.BadGateway,
        hvac.exceptions.RateLimitExceeded,
    ) as exc:
        raise VaultUnavailable(f"{where}: server error ({_vault_reason(exc)})") from None
    except hvac.exceptions.VaultError as exc:
        raise VaultError(f"{where}: rejected ({_vault_reason(exc)})") from None


# --- Login -------------------------------------------------------------------


@dataclass(frozen=True)
class LoginRequest:
    """The path and body of a login call. The body holds a credential: no repr."""

    path: str
    payload: dict[str, str] = field(repr=False)


def kubernetes_login_request(config: VaultConfig) -> LoginRequest:
    """Build the Kubernetes auth login from the pod's service-account JWT.

    The kubelet rotates the projected token file, so it is read at every login.
    """
    if not config.kubernetes_role:
        raise VaultError("Kubernetes auth needs EVENTSVC_VAULT_KUBERNETES_ROLE")
    jwt = _read_secret_file(config.kubernetes_jwt_file, "service-account token")
    return LoginRequest(
        path=f"auth/{config.kubernetes_mount}/login",
        payload={"role": config.kubernetes_role, "jwt": jwt},
    )


def approle_login_request(config: VaultConfig) -> LoginRequest:
    """Unwrap the secret_id delivered in the wrapped-secret_id file; build the AppRole login.

    The wrapping token is looked up first and must have been created by
    ``auth/<mount>/role/<role>/secret-id``: a token wrapping anything else is
    refused before it is unwrapped. A token that is unknown or already used
    means someone else may have unwrapped it: the error says to check the audit log.
    """
    if not config.role_id or not config.wrapped_secret_id_file:
        raise VaultError(
            "AppRole auth needs EVENTSVC_VAULT_ROLE_ID and EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE"
        )
    path_file = config.wrapped_secret_id_file
    try:
        wrapping_token = _read_secret_file(path_file, "wrapped secret_id")
    except VaultError as exc:
        raise WrappedSecretIdInvalid(f"{exc}; deliver a wrapped secret_id there") from None
    expected_path = f"auth/{config.approle_mount}/role/{config.approle_role}/secret-id"
    invalid = (
        f"Vault at {config.addr}: the wrapping token in {path_file} is expired, already "
        f"used or unknown; deliver a new wrapped secret_id for {expected_path}, and check "
        "the audit log for who unwrapped it"
    )
    try:
        with _vault_errors(config, "lookup", "sys/wrapping/lookup", ()):
            info = _new_client(config, "").write_data(
                "sys/wrapping/lookup", data={"token": wrapping_token}
            )
    except VaultUnavailable:
        raise
    except VaultError:
        raise WrappedSecretIdInvalid(invalid) from None
    creation_path = str(info["data"]["creation_path"])
    if creation_path != expected_path:
        raise WrappedSecretIdInvalid(
            f"Vault at {config.addr}: the wrapping token in {path_file} wraps {creation_path}, "
            f"not {expected_path}; refusing to unwrap it"
        )
    try:
        with _vault_errors(config, "unwrap", "sys/wrapping/unwrap", ()):
            unwrapped = _new_client(config, wrapping_token).sys.unwrap()
    except VaultUnavailable:
        raise
    except VaultError:
        raise WrappedSecretIdInvalid(invalid) from None
    return LoginRequest(
        path=f"auth/{config.approle_mount}/login",
        payload={"role_id": config.role_id, "secret_id": str(unwrapped["data"]["secret_id"])},
    )


@dataclass(frozen=True)
class TokenState:
    """What the session knows about its token (the token itself is kept apart)."""

    accessor: str
    policies: tuple[str, ...]
    ttl_s: int
    """Lifetime at the last login or renewal; 0 means it never expires."""
    renewable: bool
    obtained_at: float
    """``time.monotonic()`` at the last login or renewal."""
    increment_s: int
    """The TTL a renewal asks for: the TTL granted at login."""

    @property
    def refresh_at(self) -> float | None:
        """Monotonic time at which the keeper should renew or log in again."""
        if self.ttl_s <= 0:
            return None
        return self.obtained_at + REFRESH_FRACTION * self.ttl_s

    @property
    def worth_renewing(self) -> bool:
        """False once a renewal was capped by the token's max TTL: log in again instead."""
        return self.renewable and self.ttl_s >= self.increment_s


def _token_state(auth: dict[str, Any], increment_s: int | None = None) -> TokenState:
    ttl_s = int(auth["lease_duration"])
    return TokenState(
        accessor=str(auth["accessor"]),
        policies=tuple(auth.get("token_policies") or auth.get("policies") or ()),
        ttl_s=ttl_s,
        renewable=bool(auth["renewable"]),
        obtained_at=time.monotonic(),
        increment_s=ttl_s if increment_s is None else increment_s,
    )


# --- The session -------------------------------------------------------------


@dataclass(frozen=True)
class _IssuedCertificate:
    """Kept until shutdown so the certificate can be revoked (revoke-with-key)."""

    serial_number: str
    expires_at: datetime
    private_key: SecretStr = field(repr=False)


class Refresh(enum.Enum):
    """What the lease keeper may have to refresh."""

    TOKEN = "token"  # noqa: S105 - a label, not a password
    MONGO_CREDENTIAL = "mongo credential"
    SERVER_TLS = "server TLS"


class VaultSession:
    """A logged-in Vault client plus the credentials it issued.

    Build it with :meth:`login`. Every request goes through :meth:`read` or
    :meth:`write`, which map failures to :class:`VaultError` subclasses.
    """

    def __init__(self, config: VaultConfig, *, allow_token_auth: bool) -> None:
        if config.auth_method == "token" and not allow_token_auth:
            raise VaultError("EVENTSVC_VAULT_AUTH_METHOD=token is allowed in the dev profile only")
        self.config = config
        self._client = _new_client(config, "")
        self.token: TokenState | None = None
        self.runtime_dir = _private_runtime_dir(config.runtime_dir)
        self.mongo_credential: MongoCredential | None = None
        self.server_tls: ServerTLS | None = None
        self._mongo_refresh_at: float | None = None
        self._server_tls_refresh_at: float | None = None
        self._issued: list[_IssuedCertificate] = []

    def __repr__(self) -> str:
        return f"VaultSession(addr={self.config.addr!r}, auth={self.config.auth_method!r})"

    @classmethod
    def login(cls, config: VaultConfig, *, allow_token_auth: bool = False) -> VaultSession:
        """Create the runtime directory and log in; on failure, leave nothing behind."""
        session = cls(config, allow_token_auth=allow_token_auth)
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
            raise VaultError(f"Vault at {self.config.addr}: read {path}: nothing there")
        result: dict[str, Any] = response
        return result

    def write(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        """POST ``data`` to ``path`` with the session's token; {} for an empty answer."""
        with self._errors("update", path):
            response = self._client.write_data(path, data=data)
        return response if isinstance(response, dict) else {}

    def _errors(self, operation: str, path: str) -> contextlib.AbstractContextManager[None]:
        policies = self.token.policies if self.token else ()
        return _vault_errors(self.config, operation, path, policies)

    # -- token --

    def log_in(self) -> None:
        """Log in with the configured method and swap in the new token."""
        method = self.config.auth_method
        if method == "token":
            self._use_existing_token()
            return
        if method == "approle":
            request = approle_login_request(self.config)
        else:
            request = kubernetes_login_request(self.config)
        with _vault_errors(self.config, "login", request.path, ()):
            response = _new_client(self.config, "").write_data(request.path, data=request.payload)
        auth: dict[str, Any] = response["auth"]
        self._client = _new_client(self.config, str(auth["client_token"]))
        self.token = _token_state(auth)
        log.info(
            "vault: logged in with %s at %s (policies %s, ttl %ss)",
            method,
            self.config.addr,
            ",".join(self.token.policies),
            self.token.ttl_s,
        )
        set_vault_token_ttl(self.token.ttl_s)

    def _use_existing_token(self) -> None:
        """Dev only: use a token from a file (default ``$VAULT_TOKEN``), never revoke it."""
        if self.config.token_file is not None:
            token = _read_secret_file(self.config.token_file, "Vault token")
        else:
            token = os.environ.get("VAULT_TOKEN", "")
            if not token:
                raise VaultError("token auth needs a token file or VAULT_TOKEN")
        self._client = _new_client(self.config, token)
        data = self.read("auth/token/lookup-self")["data"]
        self.token = TokenState(
            accessor=str(data["accessor"]),
            policies=tuple(data.get("policies") or ()),
            ttl_s=int(data["ttl"]),
            renewable=bool(data["renewable"]),
            obtained_at=time.monotonic(),
            increment_s=int(data.get("creation_ttl") or data["ttl"]),
        )
        log.info("vault: using a given token at %s (dev profile)", self.config.addr)

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
        self.token = _token_state(response["auth"], increment_s=self.token.increment_s)
        log.info("vault: token renewed (ttl %ss)", self.token.ttl_s)
        set_vault_token_ttl(self.token.ttl_s)

    # -- credentials --

    def issue_mongo_credential(self) -> MongoCredential:
        """Issue a MongoDB client certificate (x509) or read the SCRAM user (scram)."""
        if self.config.mongodb_auth_mode == "scram":
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
            self.config.pki_client_role, {"common_name": self.config.mongo_client_common_name}
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
            self.config.pki_server_role,
            {
                "common_name": self.config.server_common_name,
                "alt_names": ",".join(self.config.server_alt_names),
                "ip_sans": ",".join(self.config.server_ip_sans),
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
        if self.config.certificate_ttl:
            request = {**request, "ttl": self.config.certificate_ttl}
        issued_at = time.time()
        data: dict[str, Any] = self.write(f"{self.config.pki_mount}/issue/{role}", request)["data"]
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

    def read_app_secret(self, name: str) -> dict[str, str]:
        """Read ``<kv_mount>/data/<kv_path>/<name>`` (KV v2, latest version)."""
        path = f"{self.config.kv_mount}/data/{self.config.kv_path}/{name}"
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
                    f"{self.config.pki_mount}/revoke-with-key",
                    {
                        "serial_number": cert.serial_number,
                        "private_key": cert.private_key.get_secret_value(),
                    },
                )
                log.info("vault: revoked certificate %s", cert.serial_number)
            except VaultError as exc:
                log.warning("vault: could not revoke certificate %s: %s", cert.serial_number, exc)
        self._issued = []
        if self.token is not None and self.config.auth_method != "token":
            try:
                self.write("auth/token/revoke-self", {})
                log.info("vault: token revoked")
            except VaultError as exc:
                log.warning("vault: could not revoke the token: %s", exc)
        self.token = None
        self._client = _new_client(self.config, "")
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


# --- The lease keeper --------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits between cap/2 and cap.

    ``cap = min(max_s, initial_s * 2**n)``. The jitter spreads the retries of many
    instances that lost Vault at the same moment.
    """

    initial_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        cap = min(self.max_s, self.initial_s * 2 ** min(attempt, 30))
        return secrets.SystemRandom().uniform(cap / 2, cap)


MongoCredentialCallback = Callable[[MongoCredential], None]
ServerTLSCallback = Callable[[ServerTLS], None]


class LeaseKeeper(threading.Thread):
    """One loop that keeps the session's token and certificates fresh.

    Each turn: find what is due first (token, MongoDB credential, server TLS),
    sleep until then, refresh it, hand a new credential to its callback. A
    failure is logged and retried with backoff; it does not stop the loop.
    """

    def __init__(
        self,
        session: VaultSession,
        *,
        on_mongo_credential: MongoCredentialCallback | None = None,
        on_server_tls: ServerTLSCallback | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name="vault-lease-keeper", daemon=True)
        self._session = session
        self._on_mongo_credential = on_mongo_credential
        self._on_server_tls = on_server_tls
        self._backoff = backoff or Backoff()
        self._stopping = threading.Event()
        self._failures: dict[Refresh, int] = {}
        self._retry_at: dict[Refresh, float] = {}

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the loop to end and wait for it (a refresh in flight finishes first)."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        log.info("vault: lease keeper started")
        while True:
            what, due_at = self._next_due()
            wait_s = None if due_at is None else max(0.0, due_at - time.monotonic())
            if self._stopping.wait(wait_s):
                break
            if what is not None:
                self._refresh(what)
        log.info("vault: lease keeper stopped")

    def _next_due(self) -> tuple[Refresh | None, float | None]:
        """The earliest due refresh; a pending retry replaces the normal schedule."""
        due = {}
        for what in Refresh:
            due_at = self._retry_at.get(what, self._session.refresh_at(what))
            if due_at is not None:
                due[what] = due_at
        if not due:
            return None, None
        what = min(due, key=lambda item: due[item])
        return what, due[what]

    def _refresh(self, what: Refresh) -> None:
        try:
            new_credential = self._refresh_from_vault(what)
        except (VaultError, OSError) as exc:
            attempt = self._failures.get(what, 0)
            delay = self._backoff.delay(attempt)
            self._failures[what] = attempt + 1
            self._retry_at[what] = time.monotonic() + delay
            log.warning("vault: %s refresh failed, retry in %.1fs: %s", what.value, delay, exc)
            return
        self._failures.pop(what, None)
        self._retry_at.pop(what, None)
        self._hand_over(new_credential)

    def _refresh_from_vault(self, what: Refresh) -> MongoCredential | ServerTLS | None:
        if what is Refresh.TOKEN:
            self._session.renew_or_log_in()
            return None
        if what is Refresh.MONGO_CREDENTIAL:
            return self._session.issue_mongo_credential()
        return self._session.issue_server_tls()

    def _hand_over(self, credential: MongoCredential | ServerTLS | None) -> None:
        """Give a new credential to the caller; its failure must not stop the keeper."""
        try:
            if isinstance(credential, ServerTLS):
                if self._on_server_tls is not None:
                    self._on_server_tls(credential)
            elif credential is not None and self._on_mongo_credential is not None:
                self._on_mongo_credential(credential)
        except Exception:  # a caller's bug is logged; the keeper lives on
            log.exception("vault: credential callback failed")


__all__ = [
    "APP_POLICY",
    "Backoff",
    "LeaseKeeper",
    "LoginRequest",
    "MongoCredential",
    "MongoScramCredential",
    "MongoX509Credential",
    "Refresh",
    "ServerTLS",
    "TokenState",
    "VaultConfig",
    "VaultError",
    "VaultPermissionDenied",
    "VaultSealed",
    "VaultSession",
    "VaultUnavailable",
    "WrappedSecretIdInvalid",
    "approle_login_request",
    "kubernetes_login_request",
    "write_private_file",
]
