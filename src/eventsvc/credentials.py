"""The service's secrets for one run: where they come from, and what workers get.

Two sources, decided by settings, in the gunicorn master, once:

- without Vault (dev/test only, :meth:`Settings.check` refuses it in prod):
  :func:`credentials_from_settings` takes what the settings give;
- with Vault: :func:`open_vault_session` logs in, then
  :func:`credentials_from_vault` reads the token pepper and the audit key
  from KV (two secrets, so policies can grant one without the other) and
  issues the MongoDB credential and the HTTPS certificate.

Either way the result is one :class:`Credentials`, which the workers inherit
through the fork. Settings are only read here, never rewritten: what Vault
decides (say, the CA to verify MongoDB against) is part of the credentials.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from pydantic import SecretStr

from eventsvc.audit.signing import CheckpointAnchor, CheckpointSigner, LocalCheckpointSigner
from eventsvc.settings import Settings
from eventsvc.vault.issued import MongoScramCredential
from eventsvc.vault.session import VaultSession
from eventsvc.vault.status import STATUS_FILE_NAME

TOKEN_PEPPER_SECRET = "token-pepper"  # a KV secret's name
"""``kv/data/eventsvc/token-pepper``: ``token_pepper`` (service, bootstrap admin)."""
AUDIT_HMAC_SECRET = "audit-hmac"  # a KV secret's name
"""``kv/data/eventsvc/audit-hmac``: ``audit_hmac_key`` (service, auditor)."""


class MissingCredential(ValueError):
    """A secret the service cannot run without was given neither by settings nor by Vault."""


@dataclass(frozen=True)
class Credentials:
    """What the service needs that is secret: its keys, a MongoDB login, its HTTPS keys."""

    token_pepper: SecretStr
    audit_key: SecretStr
    checkpoint_signer: CheckpointSigner
    """Signs audit checkpoints: Vault transit (prod), or a local Ed25519 key (dev/test)."""
    checkpoint_anchor: CheckpointAnchor | None = None
    """Copies checkpoints out of MongoDB (Vault KV, create-only); None without Vault."""
    mongodb_username: str | None = None
    mongodb_password: SecretStr | None = None
    mongodb_cert_key_file: Path | None = None
    mongodb_ca_file: Path | None = None
    """The CA MongoDB's certificate is verified against; None: the system's trust store."""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    vault_status_file: Path | None = None
    """Where the lease keeper says whether Vault answers (/readyz); None without Vault."""

    def certificates_expire_at(self) -> datetime | None:
        """When the first of the worker's certificates expires (None: it has none).

        /readyz turns unready past it: the lease keeper should have replaced
        Vault-issued ones long before, so an expired one means Vault has been out
        of reach too long (or a static dev certificate is simply too old).
        """
        files = [self.mongodb_cert_key_file, self.tls_cert_file]
        expiries = [
            x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
            for path in files
            if path is not None
        ]
        return min(expiries, default=None)


def credentials_from_settings(settings: Settings) -> Credentials:
    """Credentials given directly in settings: allowed in dev/test only (see Settings.check)."""
    if settings.token_pepper is None:
        raise MissingCredential("EVENTSVC_TOKEN_PEPPER is unset (no Vault)")
    if settings.audit_hmac_key is None:
        raise MissingCredential("EVENTSVC_AUDIT_HMAC_KEY is unset (no Vault)")
    if settings.audit_checkpoint_seed is None:
        raise MissingCredential("EVENTSVC_AUDIT_CHECKPOINT_SEED is unset (no Vault)")
    return Credentials(
        token_pepper=settings.token_pepper,
        audit_key=settings.audit_hmac_key,
        checkpoint_signer=local_checkpoint_signer(settings.audit_checkpoint_seed),
        mongodb_username=settings.mongodb_username,
        mongodb_password=settings.mongodb_password,
        mongodb_cert_key_file=settings.mongodb_tls_cert_key_file,
        mongodb_ca_file=settings.mongodb_tls_ca_file,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
    )


def local_checkpoint_signer(seed: SecretStr) -> LocalCheckpointSigner:
    """An in-process Ed25519 signer from a base64 (URL-safe) 32-byte seed: dev/test only."""
    try:
        raw = base64.urlsafe_b64decode(seed.get_secret_value().encode("ascii"))
    except (ValueError, binascii.Error):
        raise MissingCredential("EVENTSVC_AUDIT_CHECKPOINT_SEED is not base64") from None
    if len(raw) != 32:
        raise MissingCredential("EVENTSVC_AUDIT_CHECKPOINT_SEED must decode to 32 bytes")
    return LocalCheckpointSigner.from_seed(raw)


def open_vault_session(settings: Settings) -> VaultSession:
    """Log in to Vault as ``settings.vault`` says; token auth only in the dev profile.

    ValueError for an address that is not https://; VaultError or OSError
    when the login fails.
    """
    return VaultSession.open(
        settings.vault,
        runtime_parent=settings.runtime_dir,
        mongodb_auth_mode=settings.mongodb_auth_mode,
        allow_token_auth=settings.profile == "dev",
    )


def credentials_from_vault(settings: Settings, session: VaultSession) -> Credentials:
    """Read the app secrets, issue the MongoDB credential and the HTTPS certificate.

    Without an explicit ``EVENTSVC_MONGODB_TLS_CA_FILE``, MongoDB is verified
    against the CA chain that issued our client certificate (it issued mongod's too).
    """
    pepper = session.read_app_secret(TOKEN_PEPPER_SECRET)["token_pepper"]
    audit_key = session.read_app_secret(AUDIT_HMAC_SECRET)["audit_hmac_key"]
    mongo = session.issue_mongo_credential()
    tls = session.issue_server_tls()
    credentials = Credentials(
        token_pepper=SecretStr(pepper),
        audit_key=SecretStr(audit_key),
        checkpoint_signer=session.checkpoint_signer(),
        checkpoint_anchor=session.checkpoint_anchor(),
        mongodb_ca_file=settings.mongodb_tls_ca_file,
        tls_cert_file=tls.cert_file,
        tls_key_file=tls.key_file,
        vault_status_file=session.runtime_dir / STATUS_FILE_NAME,
    )
    if isinstance(mongo, MongoScramCredential):
        return replace(
            credentials, mongodb_username=mongo.username, mongodb_password=mongo.password
        )
    return replace(
        credentials,
        mongodb_cert_key_file=mongo.cert_key_file,
        mongodb_ca_file=settings.mongodb_tls_ca_file or mongo.ca_file,
    )
