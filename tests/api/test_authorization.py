"""Every route in the OpenAPI document is protected, with the right scope.

The matrix walks the *generated* spec, so a new route without
``@require_scope`` fails here even if nobody remembers to add a test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from devstack.mongod import RunningMongod
from eventsvc.api.tokens import Scope
from eventsvc.auth import (
    PUBLIC_ROUTE_ATTRIBUTE,
    SCOPE_REQUIREMENT_ATTRIBUTE,
    ScopeRequirement,
    public_route,
)
from eventsvc.tokens import SCOPES, TokenStore, parse_token_id
from support import TEST_CONTEXT, problem_of

PUBLIC = {("get", "/healthz"), ("get", "/readyz")}
EXPECTED_SCOPE = {
    ("get", "/api/v1/events"): "events:read",
    ("post", "/api/v1/events"): "events:write",
    ("post", "/api/v1/events:batch"): "events:write",
    ("get", "/api/v1/events/{event_id}"): "events:read",
    ("patch", "/api/v1/events/{event_id}"): "events:write",
    ("delete", "/api/v1/events/{event_id}"): "events:admin",
    ("get", "/api/v1/tokens"): "tokens:admin",
    ("post", "/api/v1/tokens"): "tokens:admin",
    ("get", "/api/v1/tokens/{token_id}"): "tokens:admin",
    ("post", "/api/v1/tokens/{token_id}/revoke"): "tokens:admin",
    ("get", "/api/v1/audit"): "audit:read",
}
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/events": {"name": "matrix"},
    "/api/v1/events:batch": {"events": [{"name": "matrix"}]},
    "/api/v1/events/{event_id}": {},
    "/api/v1/tokens": {"owner": "matrix", "scopes": ["events:read"]},
}


def operations(app: Flask) -> list[tuple[str, str]]:
    spec = app.test_client().get("/openapi.json").get_json()
    return [
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "put", "delete"}
    ]


def call(client: FlaskClient, method: str, path: str, token: str | None) -> Any:
    url = path.replace("{event_id}", "0" * 24).replace("{token_id}", "a" * 16)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = BODIES.get(path) if method in {"post", "patch"} else None
    return client.open(url, method=method.upper(), json=body, headers=headers)


def test_scope_literal_matches_the_token_scopes() -> None:
    assert set(get_args(Scope)) == SCOPES


def test_every_spec_route_is_classified(app: Flask) -> None:
    assert set(operations(app)) == set(EXPECTED_SCOPE) | PUBLIC


def test_openapi_declares_bearer_security_on_protected_routes(app: Flask) -> None:
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, path in EXPECTED_SCOPE:
        assert spec["paths"][path][method]["security"] == [{"bearerAuth": []}]


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED_SCOPE))
def test_authorization_matrix(
    anonymous_client: FlaskClient,
    make_token: Callable[..., str],
    tokens: TokenStore,
    mongod: RunningMongod,
    method: str,
    path: str,
) -> None:
    scope = EXPECTED_SCOPE[(method, path)]

    missing = call(anonymous_client, method, path, None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith('Bearer realm="eventsvc"')
    problem_of(missing)

    garbage = call(anonymous_client, method, path, "not-a-token")
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["WWW-Authenticate"]

    forged = call(anonymous_client, method, path, "evt_" + "a" * 16 + "_" + "b" * 43)
    assert forged.status_code == 401

    wrong_scope = call(anonymous_client, method, path, make_token(*(SCOPES - {scope})))
    assert wrong_scope.status_code == 403
    assert f'scope="{scope}"' in wrong_scope.headers["WWW-Authenticate"]
    problem_of(wrong_scope)

    expired = make_token(scope)
    with mongod.admin_client() as admin:
        admin["eventsvc"]["api_tokens"].update_one(
            {"_id": parse_token_id(expired)},
            {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}},
        )
    assert call(anonymous_client, method, path, expired).status_code == 401

    revoked = make_token(scope)
    tokens.revoke(parse_token_id(revoked), TEST_CONTEXT)
    assert call(anonymous_client, method, path, revoked).status_code == 401

    allowed = call(anonymous_client, method, path, make_token(scope))
    assert allowed.status_code not in (401, 403), allowed.data


def invalid_call(client: FlaskClient, method: str, path: str, token: str | None) -> Any:
    """A request invalid in every part the spec validates: path, query, headers and body."""
    url = path.replace("{event_id}", "not-an-id").replace("{token_id}", "NOT_A_TOKEN_ID")
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": "!",
        "If-Match": "\x7f",
        **({"Authorization": f"Bearer {token}"} if token else {}),
    }
    query = {"limit": "-1", "from": "yesterday", "start_from": "{'$gt': ''}", "unknown": "1"}
    return client.open(url, method=method.upper(), query_string=query, headers=headers, data="{")


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED_SCOPE))
def test_authentication_comes_before_input_validation(
    anonymous_client: FlaskClient, make_token: Callable[..., str], method: str, path: str
) -> None:
    """An unauthenticated or under-scoped caller gets 401/403, never the schema's feedback."""
    scope = EXPECTED_SCOPE[(method, path)]
    anonymous = invalid_call(anonymous_client, method, path, None)
    assert anonymous.status_code == 401, anonymous.data
    assert "errors" not in problem_of(anonymous)
    garbage = invalid_call(anonymous_client, method, path, "not-a-token")
    assert garbage.status_code == 401, garbage.data
    wrong_scope = invalid_call(anonymous_client, method, path, make_token(*(SCOPES - {scope})))
    assert wrong_scope.status_code == 403, wrong_scope.data
    assert "errors" not in problem_of(wrong_scope)
    # With the right scope, the same request reaches validation: the input really is invalid.
    allowed = invalid_call(anonymous_client, method, path, make_token(scope))
    operation = anonymous_client.get("/openapi.json").get_json()["paths"][path][method]
    if operation.get("parameters") or operation.get("requestBody"):
        assert allowed.status_code in (400, 415, 422), allowed.data
    else:
        assert allowed.status_code not in (401, 403), allowed.data


def test_probes_need_no_token(anonymous_client: FlaskClient) -> None:
    assert anonymous_client.get("/healthz").status_code == 200
    assert anonymous_client.get("/readyz").status_code == 200


def test_every_registered_view_carries_an_authorisation_decision(app: Flask) -> None:
    """Not only the spec's operations: every endpoint Flask can dispatch to (docs included)."""
    undecided = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if not isinstance(getattr(view, SCOPE_REQUIREMENT_ATTRIBUTE, None), ScopeRequirement)
        and not isinstance(getattr(view, PUBLIC_ROUTE_ATTRIBUTE, None), str)
    ]
    assert undecided == []
    public = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if isinstance(getattr(app.view_functions[rule.endpoint], PUBLIC_ROUTE_ATTRIBUTE, None), str)
    }
    assert public == {
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/docs",
        "/docs/init.js",
        "/docs/assets/<path:filename>",
    }


def test_a_route_without_a_decision_is_refused_even_with_every_scope(
    app: Flask, client: FlaskClient
) -> None:
    """Fail closed: a route someone registered without require_scope or public_route."""
    admin = Blueprint("forgotten", __name__)

    @admin.post("/admin/reindex")
    def reindex() -> dict[str, bool]:
        return {"reindexed": True}

    app.register_blueprint(admin)
    app.add_url_rule("/admin/purge", view_func=lambda: "purged", methods=["POST"])
    for path in ("/admin/reindex", "/admin/purge"):
        refused = client.post(path)
        assert refused.status_code == 403, refused.data
        assert "no authorisation decision" in problem_of(refused)["detail"]


def test_a_route_marked_public_answers_without_a_token(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    @app.get("/version")
    @public_route("the build version, no data")
    def version() -> dict[str, str]:
        return {"version": "1"}

    assert anonymous_client.get("/version").get_json() == {"version": "1"}


def test_a_public_route_must_say_why() -> None:
    with pytest.raises(ValueError, match="say why"):
        public_route(" ")


def test_token_lifecycle_through_the_api(
    client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    created = client.post(
        "/api/v1/tokens", json={"owner": "ci", "scopes": ["events:read"], "ttl_days": 1}
    )
    assert created.status_code == 201
    body = created.get_json()
    token = body["token"]
    assert body["scopes"] == ["events:read"]
    reader = {"Authorization": f"Bearer {token}"}
    assert anonymous_client.get("/api/v1/events", headers=reader).status_code == 200
    assert (
        anonymous_client.post("/api/v1/events", json={"name": "x"}, headers=reader).status_code
        == 403
    )

    listed = client.get("/api/v1/tokens").get_json()["items"]
    assert body["id"] in [item["id"] for item in listed]
    assert token not in client.get("/api/v1/tokens").get_data(as_text=True)

    revoked = client.post(f"/api/v1/tokens/{body['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.get_json()["revoked_at"] is not None
    assert anonymous_client.get("/api/v1/events", headers=reader).status_code == 401


def test_only_a_keyed_digest_is_stored(client: FlaskClient, mongod: RunningMongod) -> None:
    created = client.post("/api/v1/tokens", json={"owner": "ci", "scopes": ["events:read"]})
    token = created.get_json()["token"]
    with mongod.admin_client() as admin:
        record = admin["eventsvc"]["api_tokens"].find_one({"_id": created.get_json()["id"]})
    assert record is not None
    assert token not in str(record)
    secret = token.split("_", 2)[2]  # evt_<id>_<secret>; the secret itself may hold "_"
    assert len(secret) == 43
    assert secret not in str(record)
    assert len(record["digest"]) == 64


@pytest.mark.parametrize(
    "body",
    [
        {"owner": "x", "scopes": []},
        {"owner": "x", "scopes": ["root"]},
        {"owner": "x", "scopes": ["events:read"], "ttl_days": 366},
        {"owner": "", "scopes": ["events:read"]},
        {"owner": "x", "scopes": ["events:read"], "admin": True},
    ],
)
def test_invalid_token_requests_are_400(client: FlaskClient, body: dict[str, Any]) -> None:
    response = client.post("/api/v1/tokens", json=body)
    assert response.status_code == 400
    problem_of(response)


def test_a_route_can_require_a_client_certificate(
    app: Flask, make_token: Callable[..., str]
) -> None:
    from eventsvc.auth import CLIENT_CERT_SUBJECT_ENVIRON, require_scope

    @app.get("/api/v1/cert-only")
    @require_scope("events:read", client_cert=True)
    def cert_only() -> dict[str, str]:
        return {"ok": "yes"}

    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_token('events:read')}"}
    without = client.get("/api/v1/cert-only", headers=headers)
    assert without.status_code == 403
    assert "client certificate" in problem_of(without)["detail"]
    with_cert = client.get(
        "/api/v1/cert-only",
        headers=headers,
        environ_base={CLIENT_CERT_SUBJECT_ENVIRON: "CN=ci,OU=eventsvc-clients"},
    )
    assert with_cert.status_code == 200
