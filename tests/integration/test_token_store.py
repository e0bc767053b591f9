"""TokenStore's own rules, against the real mongod (issue #14, mutation survivors).

Each test pins one rule that the API and authorization tests did not notice
when it was broken: the expiry instant, the lifetime bounds, the scope
check, the pepper length, the bootstrap import, the listing order and the
audit record of a revocation.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

import eventsvc.tokens
from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AUDIT
from eventsvc.clock import truncate_to_ms, utc_now
from eventsvc.store import EventStore
from eventsvc.tokens import (
    SCOPES,
    TokenRejected,
    TokenStore,
    mint,
    parse_token_id,
    token_digest,
)
from support import TEST_CONTEXT


def audit_records(store: EventStore, action: str, token_id: str) -> list[dict[str, Any]]:
    """The audit trail's records of ``action`` on a token (tokens share the store's database)."""
    return list(store.database[AUDIT].find({"action": action, "target": token_id}))


def frozen_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Make the token module's clock (eventsvc.clock.utc_now) read ``moment``."""
    monkeypatch.setattr(eventsvc.tokens, "utc_now", lambda: moment)


def test_a_token_is_refused_from_its_expiry_instant_on(
    tokens: TokenStore, make_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token("events:read")
    expires_at = tokens.get(parse_token_id(token)).expires_at

    frozen_clock(monkeypatch, expires_at - timedelta(milliseconds=1))
    assert tokens.authenticate(token).expires_at == expires_at
    frozen_clock(monkeypatch, expires_at)
    with pytest.raises(TokenRejected):
        tokens.authenticate(token)
    frozen_clock(monkeypatch, expires_at + timedelta(days=1))
    with pytest.raises(TokenRejected):
        tokens.authenticate(token)


# The bounds the API and docs promise: 1 minute to 365 days, both inclusive.
@pytest.mark.parametrize("lifetime", [timedelta(minutes=1), timedelta(days=365)])
def test_the_lifetime_bounds_are_accepted(tokens: TokenStore, lifetime: timedelta) -> None:
    minted = tokens.create("tests", ["events:read"], lifetime, TEST_CONTEXT)
    assert minted.info.expires_at - minted.info.created_at == lifetime


@pytest.mark.parametrize(
    "lifetime",
    [
        timedelta(0),
        timedelta(minutes=1) - timedelta(milliseconds=1),
        timedelta(days=365, milliseconds=1),
        timedelta(days=366),
        -timedelta(minutes=5),
    ],
)
def test_lifetimes_outside_the_bounds_are_refused(tokens: TokenStore, lifetime: timedelta) -> None:
    before = len(tokens.list())
    with pytest.raises(ValueError, match="lifetime"):
        tokens.create("tests", ["events:read"], lifetime, TEST_CONTEXT)
    assert len(tokens.list()) == before


@pytest.mark.parametrize("scopes", [[], ["events:root"], ["events:read", "events:root"]])
def test_empty_or_unknown_scopes_are_refused(tokens: TokenStore, scopes: list[str]) -> None:
    with pytest.raises(ValueError, match="scopes"):
        tokens.create("tests", scopes, timedelta(hours=1), TEST_CONTEXT)


def test_the_pepper_must_have_at_least_32_bytes(store: EventStore, audit_log: AuditLog) -> None:
    database = store.database
    for short in (b"", b"p" * 31):
        with pytest.raises(ValueError, match="pepper"):
            TokenStore(database, short, audit_log)
    TokenStore(database, b"p" * 32, audit_log)  # exactly 32 is enough


def test_import_digest_registers_once_and_audits_once(
    tokens: TokenStore, store: EventStore, token_pepper: SecretStr
) -> None:
    token_id, token = mint()
    pepper = token_pepper.get_secret_value().encode()
    expires_at = truncate_to_ms(utc_now() + timedelta(days=1))
    args = (token_id, token_digest(pepper, token), "bootstrap", ["tokens:admin"], expires_at)

    assert tokens.import_digest(*args) is True
    assert tokens.authenticate(token).owner == "bootstrap"
    assert len(audit_records(store, "token.create", token_id)) == 1

    _, other = mint()
    replaced = (token_id, token_digest(pepper, other), "intruder", sorted(SCOPES), expires_at)
    assert tokens.import_digest(*replaced) is False
    assert tokens.authenticate(token).owner == "bootstrap"  # the first record stands
    assert len(audit_records(store, "token.create", token_id)) == 1


def test_the_listing_is_newest_first(tokens: TokenStore, make_token: Callable[..., str]) -> None:
    older = parse_token_id(make_token("events:read"))
    time.sleep(0.01)  # created_at has millisecond precision
    newer = parse_token_id(make_token("events:read"))
    listed = [info.token_id for info in tokens.list()]
    assert listed.index(newer) < listed.index(older)
    created = [info.created_at for info in tokens.list()]
    assert created == sorted(created, reverse=True)


def test_a_revocation_is_audited_once(
    tokens: TokenStore, store: EventStore, make_token: Callable[..., str]
) -> None:
    token = make_token("events:read")
    token_id = parse_token_id(token)

    revoked = tokens.revoke(token_id, TEST_CONTEXT)
    assert revoked.revoked_at is not None
    records = audit_records(store, "token.revoke", token_id)
    assert len(records) == 1
    assert records[0]["actor"] == TEST_CONTEXT.actor
    with pytest.raises(TokenRejected):
        tokens.authenticate(token)

    again = tokens.revoke(token_id, TEST_CONTEXT)  # idempotent: same instant, no new record
    assert again.revoked_at == revoked.revoked_at
    assert len(audit_records(store, "token.revoke", token_id)) == 1


def test_token_records_cannot_be_changed_after_the_fact(
    tokens: TokenStore, make_token: Callable[..., str]
) -> None:
    """What authenticate returns is the identity a request acts as: no handler may widen it."""
    info = tokens.authenticate(make_token("events:read"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.scopes = frozenset(SCOPES)  # type: ignore[misc]
    minted = tokens.create("tests", ["events:read"], timedelta(hours=1), TEST_CONTEXT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        minted.token = secrets.token_urlsafe(8)  # type: ignore[misc]
