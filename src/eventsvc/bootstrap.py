"""The first admin token: minted by an operator through Vault, imported by the service.

There is no default credential anywhere. An operator holding a Vault token
that may read the token pepper runs ``eventsvc token bootstrap --owner O``:

1. the CLI reads ``token_pepper`` from ``kv/data/eventsvc/token-pepper``;
2. mints a token locally (:func:`eventsvc.tokens.mint`) and computes its
   digest (:func:`eventsvc.tokens.token_digest`);
3. writes only ``{token_id, digest, owner, scopes, expires_at}`` to
   ``kv/data/eventsvc/bootstrap-token``, with check-and-set 0 (only if absent);
4. prints the token once. The plaintext is never stored anywhere.

At startup the service reads that record (its policy already reads
``kv/data/eventsvc/*``) and registers the digest with
:meth:`TokenStore.import_digest`, which is idempotent: a record already
imported, and maybe revoked since, is left as it is, so restarting never
revives a revoked bootstrap token. An absent record is the normal case.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from eventsvc.tokens import MAX_TOKEN_LIFETIME, TokenStore, check_scopes, mint, token_digest
from eventsvc.vault.errors import VaultError

log = logging.getLogger(__name__)

BOOTSTRAP_SECRET = "bootstrap-token"  # a KV secret's name, not a password
"""The KV v2 secret under the service's path (``kv/data/eventsvc/bootstrap-token``)."""
ADMIN_SCOPE = "tokens:admin"
DEFAULT_LIFETIME = timedelta(days=1)

_TOKEN_ID = re.compile(r"^[a-z0-9]{16}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_OWNER = re.compile(r"^[A-Za-z0-9@._ -]{1,100}$")  # as the tokens API accepts

ImportOutcome = Literal["absent", "imported", "already-present", "expired"]


class BootstrapInvalid(ValueError):
    """The bootstrap record in Vault is not one ``eventsvc token bootstrap`` wrote."""


class AppSecretReader(Protocol):
    """What the import needs of a Vault session (:class:`eventsvc.vault.session.VaultSession`)."""

    def read_app_secret(self, name: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class BootstrapRecord:
    """What crosses Vault: enough to register the token, nothing that authenticates."""

    token_id: str
    digest: str
    owner: str
    scopes: frozenset[str]
    expires_at: datetime

    def to_kv(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "digest": self.digest,
            "owner": self.owner,
            "scopes": sorted(self.scopes),
            "expires_at": self.expires_at.astimezone(UTC).isoformat(),
        }

    @classmethod
    def from_kv(cls, data: Mapping[str, Any]) -> BootstrapRecord:
        """Check every field: whoever can write this path can otherwise add a token."""
        token_id, digest, owner = data.get("token_id"), data.get("digest"), data.get("owner")
        if not isinstance(token_id, str) or not _TOKEN_ID.match(token_id):
            raise BootstrapInvalid("token_id is not 16 lower-case letters or digits")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise BootstrapInvalid("digest is not 64 hex digits")
        if not isinstance(owner, str) or not _OWNER.match(owner):
            raise BootstrapInvalid("owner is not 1-100 letters, digits, '@', '.', '_', ' ' or '-'")
        scopes = data.get("scopes")
        try:
            allowed = check_scopes(scopes if isinstance(scopes, list) else [])
        except ValueError as exc:
            raise BootstrapInvalid(str(exc)) from None
        if ADMIN_SCOPE not in allowed:
            raise BootstrapInvalid(f"scopes must include {ADMIN_SCOPE}")
        try:
            expires_at = datetime.fromisoformat(str(data.get("expires_at")))
        except ValueError:
            raise BootstrapInvalid("expires_at is not an ISO 8601 time") from None
        if expires_at.tzinfo is None:
            raise BootstrapInvalid("expires_at has no UTC offset")
        if expires_at > datetime.now(UTC) + MAX_TOKEN_LIFETIME:
            raise BootstrapInvalid("expires_at is further away than the longest token lifetime")
        return cls(token_id, digest, owner, allowed, expires_at.astimezone(UTC))


def mint_bootstrap_token(
    pepper: bytes,
    owner: str,
    extra_scopes: Iterable[str] = (),
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> tuple[str, BootstrapRecord]:
    """A fresh token and the record to store in Vault; the token goes to the operator only."""
    if not timedelta(minutes=1) <= lifetime <= MAX_TOKEN_LIFETIME:
        raise ValueError("token lifetime must be between 1 minute and 365 days")
    token_id, token = mint()
    record = BootstrapRecord.from_kv(
        {
            "token_id": token_id,
            "digest": token_digest(pepper, token),
            "owner": owner,
            "scopes": sorted({ADMIN_SCOPE, *extra_scopes}),
            "expires_at": (datetime.now(UTC) + lifetime).isoformat(),
        }
    )
    return token, record


def import_bootstrap_token(vault: AppSecretReader, tokens: TokenStore) -> ImportOutcome:
    """Register the operator's bootstrap token, if there is one; safe on every start.

    Raises :class:`eventsvc.vault.errors.VaultError` when Vault fails or denies the
    read, and :class:`BootstrapInvalid` for a malformed record: both should
    stop the start, as any other Vault failure does.
    """
    data = _read_if_present(vault)
    if data is None:
        return "absent"
    record = BootstrapRecord.from_kv(data)
    if record.expires_at <= datetime.now(UTC):
        log.warning(
            "bootstrap token %s (owner %s) expired at %s; not imported",
            record.token_id,
            record.owner,
            record.expires_at.isoformat(),
        )
        return "expired"
    if not tokens.import_digest(
        record.token_id, record.digest, record.owner, record.scopes, record.expires_at
    ):
        return "already-present"
    log.info(
        "bootstrap token %s imported from Vault for owner %s (scopes %s, expires %s)",
        record.token_id,
        record.owner,
        ",".join(sorted(record.scopes)),
        record.expires_at.isoformat(),
    )
    return "imported"


def _read_if_present(vault: AppSecretReader) -> Mapping[str, Any] | None:
    """The KV record, or None when there is none (the usual case once bootstrapped)."""
    try:
        return vault.read_app_secret(BOOTSTRAP_SECRET)
    except VaultError as exc:
        # VaultSession.read reports a missing path (404) as a plain VaultError
        # ending in "nothing there"; permission and availability failures are
        # subclasses and must propagate.
        if type(exc) is VaultError and str(exc).endswith("nothing there"):
            return None
        raise
