"""Typed service settings, read from ``EVENTSVC_*`` environment variables.

Three profiles exist: ``dev`` (a developer's machine), ``test`` (pytest) and
``prod``. ``prod`` refuses to start with anything unsafe: debug on, no TLS, no
Vault, credentials given in plain settings. The error names every offending
setting on one line, so an operator can fix them in one go.

Settings hold *where* secrets come from, never the secrets themselves: the
MongoDB credential and the TLS material come from Vault at startup
(:mod:`eventsvc.vault`). The only exception is the ``dev``/``test`` profile,
where a SCRAM password may be passed directly so the service can run without
Vault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["dev", "test", "prod"]
MongoAuthMode = Literal["x509", "scram"]
VaultAuthMethod = Literal["approle", "token", "kubernetes"]


class UnsafeSettingsError(ValueError):
    """Raised when the ``prod`` profile is asked to run with unsafe values."""


class Settings(BaseSettings):
    """Everything the service needs to know to start, and nothing secret."""

    model_config = SettingsConfigDict(
        env_prefix="EVENTSVC_",
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
    # Abuse protection (flask-limiter syntax, counted in MongoDB for all instances).
    rate_limit_per_address: str = "300/minute"
    rate_limit_per_token: str = "600/minute"  # noqa: S105 - a rate, not a secret
    # How many reverse proxies in front set X-Forwarded-For; 0 = trust none.
    trusted_proxy_count: int = Field(default=0, ge=0, le=5)
    # Browser origins allowed to call the API (CORS); empty = no CORS at all.
    cors_origins: list[str] = Field(default_factory=list)

    # --- MongoDB ----------------------------------------------------------
    mongodb_hosts: str = "127.0.0.1:27017"
    mongodb_replica_set: str | None = "rs0"
    mongodb_database: str = "eventsvc"
    mongodb_auth_mode: MongoAuthMode = "x509"
    mongodb_tls: bool = True
    mongodb_tls_ca_file: Path | None = None
    # Only for dev/test without Vault: a client certificate file or a password.
    mongodb_tls_cert_key_file: Path | None = None
    mongodb_username: str | None = None
    mongodb_password: SecretStr | None = None
    # dev/test only, like the password above; prod reads it from Vault KV.
    token_pepper: SecretStr | None = None
    audit_hmac_key: SecretStr | None = None
    mongodb_timeout_ms: int = Field(default=3000, ge=100, le=60_000)
    mongodb_max_pool_size: int = Field(default=50, ge=1, le=1000)

    # --- Vault / OpenBao --------------------------------------------------
    vault_addr: str | None = None
    vault_ca_file: Path | None = None
    vault_auth_method: VaultAuthMethod = "approle"
    vault_role_id: str | None = None
    vault_wrapped_secret_id_file: Path | None = None
    vault_approle_mount: str = "approle"
    vault_approle_role: str = "eventsvc"
    vault_token_file: Path | None = None  # dev profile only (token auth)
    vault_kubernetes_jwt_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    vault_kubernetes_role: str | None = None
    vault_kubernetes_mount: str = "kubernetes"
    vault_kv_mount: str = "kv"
    vault_kv_path: str = "eventsvc"
    vault_pki_mount: str = "pki_int"
    vault_pki_client_role: str = "eventsvc-mongo-client"
    vault_pki_server_role: str = "eventsvc-api-server"
    vault_server_common_name: str = "localhost"
    vault_server_alt_names: str = "localhost"
    vault_server_ip_sans: str = "127.0.0.1"
    runtime_dir: Path | None = None

    # --- Observability (eventsvc.observability, eventsvc.metrics) -----------
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None  # OTLP/HTTP traces URL; None: OTEL_EXPORTER_OTLP_*
    metrics_port: int | None = Field(default=None, ge=1024, le=65535)  # 127.0.0.1 only

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
        return self.vault_addr is not None

    def unsafe_reasons(self) -> list[str]:
        """List why these settings are unsafe for production (empty when safe)."""
        reasons: list[str] = []
        if self.debug:
            reasons.append("EVENTSVC_DEBUG must be false")
        if not self.uses_vault:
            reasons.append("EVENTSVC_VAULT_ADDR must be set (secrets come from Vault)")
        elif not self.vault_addr or not self.vault_addr.startswith("https://"):
            reasons.append("EVENTSVC_VAULT_ADDR must be an https:// URL")
        if self.vault_auth_method == "token":
            reasons.append("EVENTSVC_VAULT_AUTH_METHOD=token is for the dev profile only")
        if self.vault_auth_method == "approle" and not (
            self.vault_role_id and self.vault_wrapped_secret_id_file
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
