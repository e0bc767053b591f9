"""The secret half of a token is what authenticates, not the id (issue #14).

Token ids are not secret: they appear as the audit actor, in logs and in the
token listing. So a caller who knows a real id must still be refused unless
the secret is the one minted with that id. Each test presents a *real* id
with a wrong secret, and with the secret of another real token; the
authorization matrix's forged token uses an id that does not exist and so
cannot tell whether the secret is checked at all.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from eventsvc.tokens import SCOPES, TokenRejected, TokenStore, parse_token_id

# One route per scope: enough to show the check sits before every scope check.
ROUTES_BY_SCOPE = {
    "events:read": ("GET", "/api/v1/events"),
    "events:write": ("POST", "/api/v1/events"),
    "events:admin": ("DELETE", "/api/v1/events/" + "0" * 24),
    "tokens:admin": ("GET", "/api/v1/tokens"),
    "audit:read": ("GET", "/api/v1/audit"),
}


def with_secret_of(token: str, other: str) -> str:
    """``token``'s real id with ``other``'s secret (both well-formed)."""
    return f"evt_{parse_token_id(token)}_{other.rsplit('_', 1)[1]}"


def with_wrong_secret(token: str) -> str:
    """``token``'s real id with a secret that differs from its own in the last character."""
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


def test_routes_cover_every_scope() -> None:
    assert set(ROUTES_BY_SCOPE) == SCOPES


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES_BY_SCOPE.values()))
def test_a_real_id_with_a_wrong_secret_is_401(
    anonymous_client: FlaskClient, make_token: Callable[..., str], method: str, path: str
) -> None:
    genuine = make_token()
    other = make_token()
    headers = {"Authorization": f"Bearer {genuine}"}
    assert anonymous_client.open(
        path, method=method, json={"name": "x"}, headers=headers
    ).status_code not in (401, 403)

    for presented in (with_wrong_secret(genuine), with_secret_of(genuine, other)):
        response = anonymous_client.open(
            path,
            method=method,
            json={"name": "x"},
            headers={"Authorization": f"Bearer {presented}"},
        )
        assert response.status_code == 401, presented
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_the_store_rejects_a_real_id_with_a_wrong_secret(
    tokens: TokenStore, make_token: Callable[..., str]
) -> None:
    genuine = make_token("events:read")
    other = make_token("events:read")
    assert tokens.authenticate(genuine).token_id == parse_token_id(genuine)
    with pytest.raises(TokenRejected):
        tokens.authenticate(with_wrong_secret(genuine))
    with pytest.raises(TokenRejected):
        tokens.authenticate(with_secret_of(genuine, other))
    with pytest.raises(TokenRejected):
        tokens.authenticate(with_secret_of(other, genuine))
