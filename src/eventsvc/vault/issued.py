"""What a Vault session obtains, and when each piece is due for a refresh.

Plain values, shared by the session (which fills them in) and the keeper
(which decides when to refresh them). The credentials hold file paths and
``SecretStr`` only, so printing one never shows a secret.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

REFRESH_FRACTION = 2 / 3
"""Refresh a token or certificate when this fraction of its lifetime has passed."""


# --- What the caller receives -------------------------------------------------


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


# --- What the session keeps ----------------------------------------------------


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

    @classmethod
    def from_auth(cls, auth: dict[str, Any], increment_s: int | None = None) -> TokenState:
        """From the ``auth`` part of a login or renewal response; the token itself is ignored."""
        ttl_s = int(auth["lease_duration"])
        return cls(
            accessor=str(auth["accessor"]),
            policies=tuple(auth.get("token_policies") or auth.get("policies") or ()),
            ttl_s=ttl_s,
            renewable=bool(auth["renewable"]),
            obtained_at=time.monotonic(),
            increment_s=ttl_s if increment_s is None else increment_s,
        )


class Refresh(enum.Enum):
    """What the lease keeper may have to refresh."""

    TOKEN = "token"  # a label, not a password
    MONGO_CREDENTIAL = "mongo credential"
    SERVER_TLS = "server TLS"
