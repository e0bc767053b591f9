"""Edges of the request authentication that mutation testing found unchecked (issue #14).

The scheme must be Bearer (a valid token under another scheme is refused),
only a non-empty string the server put in the environ counts as a client
certificate subject, CORS preflights, which browsers send without
credentials, are not asked for a token, and neither the authenticated
principal nor a route's requirement can be changed once made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eventsvc.auth import (
    CLIENT_CERT_SUBJECT_ENVIRON,
    SCOPE_REQUIREMENT_ATTRIBUTE,
    authenticate,
    require_scope,
)


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Bearer:", "Bearerx"])
def test_a_valid_token_under_another_scheme_is_401(
    anonymous_client: FlaskClient, make_token: Callable[..., str], scheme: str
) -> None:
    token = make_token("events:read")
    response = anonymous_client.get(
        "/api/v1/events", headers={"Authorization": f"{scheme} {token}"}
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(
    anonymous_client: FlaskClient, make_token: Callable[..., str], scheme: str
) -> None:
    token = make_token("events:read")
    response = anonymous_client.get(
        "/api/v1/events", headers={"Authorization": f"{scheme} {token}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("subject", ["", b"CN=ci,OU=eventsvc-clients", 1])
def test_only_a_non_empty_subject_string_counts_as_a_client_certificate(
    app: Flask, make_token: Callable[..., str], subject: object
) -> None:
    @app.get("/api/v1/cert-only-edges")
    @require_scope("events:read", client_cert=True)
    def cert_only() -> dict[str, str]:
        return {"ok": "yes"}

    headers = {"Authorization": f"Bearer {make_token('events:read')}"}
    response = app.test_client().get(
        "/api/v1/cert-only-edges",
        headers=headers,
        environ_base={CLIENT_CERT_SUBJECT_ENVIRON: subject},
    )
    assert response.status_code == 403


def test_a_cors_preflight_needs_no_token(anonymous_client: FlaskClient) -> None:
    response = anonymous_client.options(
        "/api/v1/events",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 200
    assert "WWW-Authenticate" not in response.headers


def test_the_principal_and_a_route_requirement_cannot_be_changed(
    app: Flask, make_token: Callable[..., str]
) -> None:
    """Code running after authentication must not widen who the caller is or what a route needs."""
    endpoint, _ = app.url_map.bind("localhost").match("/api/v1/events", method="GET")
    view = app.view_functions[endpoint]
    requirement = getattr(view, SCOPE_REQUIREMENT_ATTRIBUTE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        requirement.scope = "events:read"
    with app.test_request_context(headers={"Authorization": f"Bearer {make_token('events:read')}"}):
        principal = authenticate()
        with pytest.raises(dataclasses.FrozenInstanceError):
            principal.client_cert_subject = "CN=forged"  # type: ignore[misc]
