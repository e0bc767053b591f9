"""Typed service settings, read from ``EVENTSVC_*`` environment variables.

Three profiles exist: ``dev`` (a developer's machine), ``test`` (pytest) and
``prod``. ``prod`` refuses to start with anything unsafe: debug on, no TLS, no
Vault, credentials given in plain settings. The error names every offending
setting on one line, so an operator can fix them in one go.

Settings hold *where* secrets come from, never the secrets themselves: the
MongoDB credential, the TLS material, the token pepper and the audit key come
from Vault at startup (:mod:`eventsvc.credentials`). The only exception is the
``dev``/``test`` profile, where they may be given directly so the service can
run without Vault.

The Vault settings are one nested model, :class:`VaultSettings`, which the
vault package uses as it is; its variables keep their flat names
(``EVENTSVC_VAULT_ADDR`` sets ``settings.vault.addr``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Profile = Literal["dev", "test", "prod"]
MongoAuthMode = Literal["x509", "scram"]
VaultAuthMethod = Literal["approle", "token", "kubernetes"]


def _split_comma_separated(value: Any) -> Any:
    """``"a, b"`` → ``("a", "b")``: how a list of names is written in one variable."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


_RATE = re.compile(r"^\s*([1-9][0-9]{0,8})\s*(?:/|per)\s*(second|minute|hour|day)\s*$")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most ``count`` requests per fixed window of ``seconds``."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"600/minute"`` or ``"600 per minute"`` (second, minute, hour, day)."""
        match = _RATE.match(text)
        if match is None:
            raise ValueError("a rate is COUNT/PERIOD, e.g. 600/minute (second, minute, hour, day)")
        return cls(int(match.group(1)), _PERIOD_SECONDS[match.group(2)])


def _check_rate(value: str) -> str:
    Rate.parse(value)
    return value


RateText = Annotated[str, AfterValidator(_check_rate)]
"""A rate as written in a variable (``600/minute``), refused at start when malformed."""


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_comma_separated)]
"""A tuple of names, given as ``a,b`` in the environment (NoDecode: not parsed as JSON)."""


class VaultSettings(BaseModel):
    """Where Vault is and what to ask it for: the ``EVENTSVC_VAULT_*`` variables.

    ``EVENTSVC_VAULT_PKI_MOUNT`` is ``pki_mount`` here (see ``Settings.model_config``).
    Used as it is by :mod:`eventsvc.vault`. Holds no secret, only names and paths.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    addr: str | None = None
    """The https:// URL of Vault; None: secrets are given in settings (dev/test only)."""
    ca_file: Path | None = None
    """The CA that signed Vault's certificate; None: the system trust store."""
    auth_method: VaultAuthMethod = "approle"
    role_id: str | None = None
    wrapped_secret_id_file: Path | None = None
    approle_mount: str = "approle"
    approle_role: str = "eventsvc"
    token_file: Path | None = None  # dev profile only (token auth)
    kubernetes_jwt_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    kubernetes_role: str | None = None
    kubernetes_mount: str = "kubernetes"
    kv_mount: str = "kv"
    kv_path: str = "eventsvc"
    pki_mount: str = "pki_int"
    pki_client_role: str = "eventsvc-mongo-client"
    pki_server_role: str = "eventsvc-api-server"
    mongo_client_common_name: str = "eventsvc"
    server_common_name: str = "localhost"
    server_alt_names: CommaSeparated = ("localhost",)
    server_ip_sans: CommaSeparated = ("127.0.0.1",)
    certificate_ttl: str | None = None
    """Requested certificate TTL (e.g. ``"2h"``); None uses the PKI role's default."""
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)


class UnsafeSettingsError(ValueError):
    """Raised when the ``prod`` profile is asked to run with unsafe values."""


class Settings(BaseSettings):
    """Everything the service needs to know to start, and nothing secret."""

    model_config = SettingsConfigDict(
        env_prefix="EVENTSVC_",
        # EVENTSVC_VAULT_CA_FILE -> vault.ca_file: split once after a nested
        # model's name, never inside a field name.
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    profile: Profile = "prod"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- HTTP API ---------------------------------------------------------
    bind: str = "127.0.0.1:8443"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    tls_require_client_cert: bool = False
    workers: int | None = Field(default=None, ge=1, le=64)
    # Abuse protection (eventsvc.ratelimit), counted in MongoDB for all instances:
    # requests with a valid token count against their token; every other request
    # (no token, a refused one, the docs, an unknown path; not the probes)
    # against its client address. Per-address limits of authenticated traffic
    # are the gateway's. COUNT/PERIOD, PERIOD one of second, minute, hour, day.
    rate_limit_per_address: RateText = "300/minute"
    rate_limit_per_token: RateText = "600/minute"  # a rate, not a secret
    # Verified tokens kept per worker (eventsvc.tokencache): seconds (0 = off) and how many.
    # A revocation drops a token at once through a change stream; without a live
    # stream, every request reads its token from MongoDB.
    token_cache_seconds: float = Field(default=15.0, ge=0, le=300)
    token_cache_size: int = Field(default=10_000, ge=1, le=1_000_000)
    # How many reverse proxies in front set X-Forwarded-For; 0 = trust none.
    trusted_proxy_count: int = Field(default=0, ge=0, le=5)
    # Browser origins allowed to call the API (CORS); empty = no CORS at all.
    cors_origins: list[str] = Field(default_factory=list)

    # --- MongoDB ----------------------------------------------------------
    mongodb_hosts: str = "127.0.0.1:27017"
    mongodb_replica_set: str | None = "rs0"
    mongodb_database: str = "eventsvc"
    # With Vault, x509: a client certificate from PKI; scram: user and password from KV.
    mongodb_auth_mode: MongoAuthMode = "x509"
    mongodb_tls: bool = True
    # None: with a Vault client certificate, the CA chain that issued it; else the system's.
    mongodb_tls_ca_file: Path | None = None
    # Only for dev/test without Vault: a client certificate file or a password.
    mongodb_tls_cert_key_file: Path | None = None
    mongodb_username: str | None = None
    mongodb_password: SecretStr | None = None
    # dev/test only, like the password above; prod reads it from Vault KV.
    token_pepper: SecretStr | None = None
    audit_hmac_key: SecretStr | None = None
    # dev/test only: seed of a local Ed25519 checkpoint key; prod signs with Vault transit.
    audit_checkpoint_seed: SecretStr | None = None
    # Server selection, connect, each operation (timeoutMS), and all the MongoDB work of
    # one HTTP request together: then 503 (docs/reliability.md, "Durability settings").
    mongodb_timeout_ms: int = Field(default=3000, ge=100, le=60_000)
    mongodb_max_pool_size: int = Field(default=50, ge=1, le=1000)

    # --- Vault / OpenBao --------------------------------------------------
    vault: VaultSettings = VaultSettings()
    # Where the Vault session makes its private 0700 directory; None: the temp dir.
    runtime_dir: Path | None = None

    # --- Observability (eventsvc.observability, eventsvc.metrics) -----------
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None  # OTLP/HTTP traces URL; None: OTEL_EXPORTER_OTLP_*
    metrics_port: int | None = Field(default=None, ge=1024, le=65535)  # 127.0.0.1 only

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_vault_names(cls, data: Any) -> Any:
        """Also take ``vault_addr=...``, the names as the environment spells them.

        The environment is read nested (``EVENTSVC_VAULT_ADDR`` is ``vault.addr``);
        code that builds Settings from a mapping of the same names (the dev
        stack) or from keyword arguments passes them flat. A flat name wins
        over the same one given nested, as arguments win over the environment.
        """
        if not isinstance(data, dict):
            return data
        flat = {key: value for key, value in data.items() if key.startswith("vault_")}
        if not flat:
            return data
        nested = data.get("vault", {})
        if isinstance(nested, VaultSettings):
            nested = nested.model_dump(exclude_unset=True)
        if not isinstance(nested, dict):
            return data  # not a model or a mapping: validation says so
        rest = {key: value for key, value in data.items() if key not in flat}
        given = {key.removeprefix("vault_"): value for key, value in flat.items()}
        return {**rest, "vault": {**nested, **given}}

    @field_validator("mongodb_hosts")
    @classmethod
    def _hosts_have_no_credentials(cls, value: str) -> str:
        """Reject ``user:pass@host`` so a password never sits in a host list."""
        if "@" in value or "/" in value:
            raise ValueError("mongodb_hosts is host:port[,host:port]; no credentials, no scheme")
        return value

    @property
    def uses_vault(self) -> bool:
        """True when secrets are fetched from Vault rather than given directly."""
        return self.vault.addr is not None

    def unsafe_reasons(self) -> list[str]:
        """List why these settings are unsafe for production (empty when safe)."""
        reasons: list[str] = []
        if self.debug:
            reasons.append("EVENTSVC_DEBUG must be false")
        if not self.uses_vault:
            reasons.append("EVENTSVC_VAULT_ADDR must be set (secrets come from Vault)")
        elif not self.vault.addr or not self.vault.addr.startswith("https://"):
            reasons.append("EVENTSVC_VAULT_ADDR must be an https:// URL")
        if self.vault.auth_method == "token":
            reasons.append("EVENTSVC_VAULT_AUTH_METHOD=token is for the dev profile only")
        if self.vault.auth_method == "approle" and not (
            self.vault.role_id and self.vault.wrapped_secret_id_file
        ):
            reasons.append(
                "AppRole needs EVENTSVC_VAULT_ROLE_ID and EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE"
            )
        if not self.mongodb_tls:
            reasons.append("EVENTSVC_MONGODB_TLS must be true")
        if self.mongodb_password is not None:
            reasons.append("EVENTSVC_MONGODB_PASSWORD must not be set (read it from Vault KV)")
        if self.audit_hmac_key is not None:
            reasons.append("EVENTSVC_AUDIT_HMAC_KEY must not be set (read it from Vault KV)")
        if self.audit_checkpoint_seed is not None:
            reasons.append(
                "EVENTSVC_AUDIT_CHECKPOINT_SEED must not be set (checkpoints are signed by Vault)"
            )
        if self.token_pepper is not None:
            reasons.append("EVENTSVC_TOKEN_PEPPER must not be set (read it from Vault KV)")
        if self.mongodb_tls_cert_key_file is not None:
            reasons.append("EVENTSVC_MONGODB_TLS_CERT_KEY_FILE must not be set (Vault issues it)")
        if self.otel_endpoint is not None and not self.otel_endpoint.startswith("https://"):
            reasons.append("EVENTSVC_OTEL_ENDPOINT must be an https:// URL")
        return reasons

    def check(self) -> Settings:
        """Raise :class:`UnsafeSettingsError` when ``prod`` would run unsafely."""
        if self.profile == "prod":
            reasons = self.unsafe_reasons()
            if reasons:
                raise UnsafeSettingsError("unsafe production settings: " + "; ".join(reasons))
        return self


def load_settings() -> Settings:
    """Read settings from the environment and refuse unsafe production values."""
    return Settings().check()
