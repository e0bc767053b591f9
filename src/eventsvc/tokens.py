"""API tokens: minted once, stored only as a keyed digest, checked in constant time.

A token looks like ``evt_<token_id>_<secret>``: the id finds the record
without scanning, the 256-bit secret proves possession. The database holds
``HMAC-SHA-256(pepper, token)`` only; the pepper comes from Vault KV, so a
copy of the database alone cannot be used to check guessed tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ASCENDING, IndexModel
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from eventsvc.audit.log import AuditLog
from eventsvc.clock import truncate_to_ms, utc_now
from eventsvc.domain import SYSTEM_CONTEXT, DomainError, RequestContext
from eventsvc.schema import CollectionSchema
from eventsvc.store import run_in_transaction, unavailable_on_connection_errors

if TYPE_CHECKING:
    from eventsvc.tokencache import TokenCache

log = logging.getLogger(__name__)

Document = dict[str, Any]
T = TypeVar("T")

SCOPES = frozenset({"events:read", "events:write", "events:admin", "audit:read", "tokens:admin"})
IDENTIFIER_PREFIX = "evt"  # not a secret: makes leaked tokens greppable
_TOKEN_PATTERN = re.compile(r"^evt_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
MAX_TOKEN_LIFETIME = timedelta(days=365)
TOKENS = "api_tokens"
TOKENS_SCHEMA = CollectionSchema(TOKENS, None, (IndexModel([("owner", ASCENDING)], name="owner"),))
"""What :mod:`eventsvc.dbschema` creates (migration) and checks (app start)."""


class TokenRejected(DomainError):
    """Missing, malformed, unknown, expired or revoked: the caller gets a 401."""


class TokenNotFound(DomainError):
    """No token with this id (for revoke/list by admins)."""


@dataclass(frozen=True)
class TokenInfo:
    """A token's record, without anything that could authenticate."""

    token_id: str
    owner: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    created_by: str


@dataclass(frozen=True)
class MintedToken:
    """The only moment the plaintext token exists on the server: return it, forget it."""

    token: str
    info: TokenInfo

    def __repr__(self) -> str:
        return f"MintedToken(token=<redacted>, info={self.info!r})"


def token_digest(pepper: bytes, token: str) -> str:
    """HMAC-SHA-256 of the whole token under the Vault-held pepper."""
    return hmac.new(pepper, token.encode("ascii"), hashlib.sha256).hexdigest()


def mint() -> tuple[str, str]:
    """A fresh ``(token_id, token)`` pair; the secret part has 256 bits of entropy."""
    token_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    secret = secrets.token_urlsafe(32)  # 32 bytes = 256 bits -> 43 url-safe characters
    return token_id, f"{IDENTIFIER_PREFIX}_{token_id}_{secret}"


def parse_token_id(token: str) -> str:
    """The id part of a well-formed token, or TokenRejected."""
    match = _TOKEN_PATTERN.match(token)
    if match is None:
        raise TokenRejected("malformed token")
    return match.group(1)


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    requested = frozenset(scopes)
    unknown = requested - SCOPES
    if not requested or unknown:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
    return requested


def _to_info(document: Document) -> TokenInfo:
    """Map a stored token record to its info (BSON dates come back naive UTC)."""
    revoked_at = document.get("revoked_at")
    return TokenInfo(
        token_id=document["_id"],
        owner=document["owner"],
        scopes=frozenset(document["scopes"]),
        created_at=document["created_at"].replace(tzinfo=UTC),
        expires_at=document["expires_at"].replace(tzinfo=UTC),
        revoked_at=None if revoked_at is None else revoked_at.replace(tzinfo=UTC),
        created_by=document["created_by"],
    )


def _unexpired(info: TokenInfo) -> TokenInfo:
    """``expires_at`` is the first instant a token is refused, cached or not."""
    if info.expires_at <= utc_now():
        raise TokenRejected("expired token")
    return info


class TokenStore:
    """Token records in MongoDB, keyed by token id."""

    def __init__(
        self,
        database: Database[Document],
        pepper: bytes,
        audit: AuditLog,
        cache: TokenCache | None = None,
    ) -> None:
        """``cache``: verified tokens kept in this process (:mod:`eventsvc.tokencache`).

        It is used only once :meth:`watch_revocations` runs (in each worker).
        """
        if len(pepper) < 32:
            raise ValueError("the token pepper must be at least 32 bytes")
        self._database = database
        self._pepper = pepper
        self._audit = audit
        self._cache = cache

    def watch_revocations(self) -> None:
        """Start following token changes, which lets the cache answer (no-op without one)."""
        if self._cache is not None:
            self._cache.watch(self._database.get_collection(TOKENS))

    def stop_watching(self) -> None:
        """Stop following token changes; every token is read from MongoDB again."""
        if self._cache is not None:
            self._cache.stop()

    @property
    def _tokens(self) -> Collection[Document]:
        return self._database.get_collection(
            TOKENS, write_concern=WriteConcern(w="majority", j=True)
        )

    def _in_transaction(self, work: Callable[[ClientSession], T]) -> T:
        """A token change and its audit record commit together."""
        return run_in_transaction(self._database.client, work)

    def create(
        self,
        owner: str,
        scopes: Iterable[str],
        lifetime: timedelta,
        context: RequestContext,
    ) -> MintedToken:
        """Mint a token and store its digest; the plaintext is returned once."""
        allowed = check_scopes(scopes)
        if not timedelta(minutes=1) <= lifetime <= MAX_TOKEN_LIFETIME:
            raise ValueError("token lifetime must be between 1 minute and 365 days")
        token_id, token = mint()
        now = truncate_to_ms(utc_now())
        document: Document = {
            "_id": token_id,
            "digest": token_digest(self._pepper, token),
            "owner": owner,
            "scopes": sorted(allowed),
            "created_at": now,
            "expires_at": now + lifetime,
            "revoked_at": None,
            "created_by": context.actor,
        }

        def work(session: ClientSession) -> None:
            self._tokens.insert_one(document, session=session)
            self._audit.append_change(context, "token.create", None, document, session=session)

        self._in_transaction(work)
        log.info("token %s created for owner %s by %s", token_id, owner, context.actor)
        return MintedToken(token, _to_info(document))

    def import_digest(
        self,
        token_id: str,
        digest: str,
        owner: str,
        scopes: Iterable[str],
        expires_at: datetime,
    ) -> bool:
        """Register a token minted elsewhere (the operator's bootstrap via Vault).

        Only the digest crosses over; returns False when it was already there.
        """
        document: Document = {
            "digest": digest,
            "owner": owner,
            "scopes": sorted(check_scopes(scopes)),
            "created_at": truncate_to_ms(utc_now()),
            "expires_at": expires_at,
            "revoked_at": None,
            "created_by": "vault-bootstrap",
        }

        def work(session: ClientSession) -> bool:
            result = self._tokens.update_one(
                {"_id": token_id}, {"$setOnInsert": document}, upsert=True, session=session
            )
            if result.upserted_id is None:
                return False
            # Who wrote the bootstrap record is in Vault's own audit log.
            stored = {"_id": token_id, **document}
            self._audit.append_change(SYSTEM_CONTEXT, "token.create", None, stored, session=session)
            return True

        return self._in_transaction(work)

    def authenticate(self, token: str) -> TokenInfo:
        """The token's record if it is genuine, unexpired and not revoked.

        Every failure raises the same TokenRejected, and the digest comparison
        is constant-time, so responses do not tell an attacker which part was
        wrong.
        """
        token_id = parse_token_id(token)
        presented = token_digest(self._pepper, token)
        generation = 0
        if self._cache is not None:
            cached = self._cache.get(token_id, presented)
            if cached is not None:
                return _unexpired(cached)
            generation = self._cache.generation()
        document = unavailable_on_connection_errors(
            lambda: self._tokens.find_one({"_id": token_id})
        )
        expected = document["digest"] if document else token_digest(self._pepper, "evt_dummy")
        if not hmac.compare_digest(expected, presented) or document is None:
            raise TokenRejected("unknown token")
        info = _to_info(document)
        if info.revoked_at is not None:
            raise TokenRejected("revoked token")
        _unexpired(info)
        if self._cache is not None:
            self._cache.put(presented, info, generation)
        return info

    def _revoke_cached(
        self, token_id: str, cache: TokenCache, revoke: Callable[[ClientSession], bool]
    ) -> None:
        """Revoke, drop the token here, and answer once the change stream has carried it."""
        waiter = cache.expect_change(token_id)
        try:
            changed = self._in_transaction(revoke)
            cache.drop(token_id)
            if changed and not cache.wait_for_change(waiter):
                log.warning("token %s revoked; the revocation watch has not reported it", token_id)
        finally:
            cache.forget(token_id, waiter)

    def get(self, token_id: str) -> TokenInfo:
        document = self._tokens.find_one({"_id": token_id})
        if document is None:
            raise TokenNotFound(f"token {token_id} does not exist")
        return _to_info(document)

    def list(self) -> list[TokenInfo]:
        return [_to_info(document) for document in self._tokens.find().sort("created_at", -1)]

    def revoke(self, token_id: str, context: RequestContext) -> TokenInfo:
        """Mark a token revoked (kept for the audit trail, never deleted). Idempotent."""

        def revoke_and_audit(session: ClientSession) -> bool:
            before = self._tokens.find_one_and_update(
                {"_id": token_id, "revoked_at": None},
                {"$set": {"revoked_at": truncate_to_ms(utc_now())}},
                session=session,
            )
            if before is None:  # already revoked: nothing changes, nothing to audit
                return False
            after = self._tokens.find_one({"_id": token_id}, session=session)
            self._audit.append_change(context, "token.revoke", before, after, session=session)
            return True

        self.get(token_id)  # 404 for an unknown id
        if self._cache is None:
            self._in_transaction(revoke_and_audit)
        else:
            self._revoke_cached(token_id, self._cache, revoke_and_audit)
        log.info("token %s revoked by %s", token_id, context.actor)
        return self.get(token_id)
