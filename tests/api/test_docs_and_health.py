"""OpenAPI, Swagger UI (local assets), probes, headers, index use."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from eventsvc.api.services import CERTIFICATES_EXPIRE_AT_KEY, VAULT_STATUS_FILE_KEY
from eventsvc.store import START_EVENT_INDEX, EventFilter, EventStore
from eventsvc.vault.errors import VaultError
from eventsvc.vault.status import STATUS_FILE_NAME, StatusFile


def test_openapi_is_3_1_and_describes_every_route(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert set(paths["/api/v1/events"]) >= {"get", "post"}
    assert set(paths["/api/v1/events/{event_id}"]) >= {"get", "patch", "delete"}
    assert "/healthz" in paths
    assert "/readyz" in paths


def test_committed_openapi_matches_the_code(
    client: FlaskClient, repo_root: Path, tmp_path: Path
) -> None:
    """Regenerate with `make openapi` when this fails."""
    committed = json.loads((repo_root / "openapi.json").read_text())
    assert client.get("/openapi.json").get_json() == committed
    exported = tmp_path / "openapi.json"
    subprocess.run(
        [sys.executable, "-m", "eventsvc.openapi", str(exported)], check=True, timeout=60
    )
    assert exported.read_text() == (repo_root / "openapi.json").read_text()


def _object_schemas(schema: object, schemas: dict[str, object], seen: set[str]) -> list[dict]:
    """Every object schema inside ``schema``, following ``$ref`` into components once."""
    if isinstance(schema, list):
        return [found for item in schema for found in _object_schemas(item, schemas, seen)]
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _object_schemas(schemas[name], schemas, seen)
    found = [schema] if schema.get("type") == "object" else []
    for value in schema.values():
        found += _object_schemas(value, schemas, seen)
    return found


def test_response_schemas_refuse_undocumented_fields(client: FlaskClient) -> None:
    """A field the document does not name is a schema violation (DAST reports a leaked field)."""
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    responses = [
        (f"{method.upper()} {path} {status}", response)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
    ]
    checked = 0
    for label, response in responses:
        for media in response.get("content", {}).values():
            for schema in _object_schemas(media["schema"], schemas, set()):
                checked += 1
                extra = schema.get("additionalProperties")
                # Either closed (false) or a map whose values have a schema (attributes, checks).
                assert extra is False or (
                    not schema.get("properties") and isinstance(extra, dict)
                ), f"{label}: an object schema accepts undocumented fields: {schema}"
    assert checked > len(responses)  # every JSON response has at least one object


def test_docs_page_uses_only_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in [
        "/docs/assets/js/swagger-ui-bundle.js",
        "/docs/assets/css/swagger-ui.css",
        "/docs/init.js",
    ]:
        assert asset in html
        assert client.get(asset).status_code == 200
    assert client.get("/docs/assets/../../app.py").status_code == 404


def test_probes(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["mongodb"] == "ok"


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for response in [client.get("/api/v1/events"), client.get("/api/v1/nope")]:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Request-Id"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_request_id_is_always_minted_by_the_server(client: FlaskClient) -> None:
    """A caller's X-Request-Id is never passed off as ours (it is kept as client_request_id)."""
    chosen = client.get("/healthz", headers={"X-Request-Id": "abc-123-def-456"})
    assert chosen.headers["X-Request-Id"] != "abc-123-def-456"
    assert len(chosen.headers["X-Request-Id"]) == 36  # a fresh uuid4
    forged = client.get("/healthz", headers={"X-Request-Id": "<script> or too long" * 4})
    assert forged.headers["X-Request-Id"] != "<script> or too long" * 4
    assert len(forged.headers["X-Request-Id"]) == 36


def test_list_query_uses_the_start_event_index(store: EventStore, client: FlaskClient) -> None:
    for index in range(20):
        client.post("/api/v1/events", json={"name": f"e{index}"})
    for event_filter in [
        EventFilter(),
        EventFilter(status="open"),
        EventFilter(start_from=datetime(2026, 1, 1, tzinfo=UTC)),
    ]:
        plan = json.dumps(store.explain_list(event_filter)["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in plan
        assert "IXSCAN" in plan
        assert START_EVENT_INDEX in plan


def test_readyz_turns_unready_when_certificates_expired(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/readyz").get_json()["checks"]["certificates"] == "none"
    app.extensions[CERTIFICATES_EXPIRE_AT_KEY] = datetime.now(UTC) + timedelta(hours=1)
    valid = client.get("/readyz")
    assert valid.status_code == 200
    assert valid.get_json()["checks"]["certificates"].startswith("ok (valid until ")
    app.extensions[CERTIFICATES_EXPIRE_AT_KEY] = datetime.now(UTC) - timedelta(seconds=1)
    expired = client.get("/readyz")
    assert expired.status_code == 503
    assert expired.get_json()["checks"]["certificates"].startswith("expired at ")


def test_readyz_is_degraded_while_vault_is_unreachable_and_certificates_valid(
    app: Flask, tmp_path: Path
) -> None:
    """Stay in rotation (200) on valid credentials; say since when, and until when."""
    client = app.test_client()
    assert "vault" not in client.get("/readyz").get_json()["checks"], "no Vault, no check"
    status_file = tmp_path / STATUS_FILE_NAME
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    app.extensions[VAULT_STATUS_FILE_KEY] = status_file
    app.extensions[CERTIFICATES_EXPIRE_AT_KEY] = expires_at
    fresh = client.get("/readyz")
    assert (fresh.status_code, fresh.get_json()["status"]) == (200, "ok")
    assert fresh.get_json()["checks"]["vault"] == "ok"
    keeper_side = StatusFile(status_file)
    keeper_side.failed(VaultError("timed out"))
    degraded = client.get("/readyz")
    assert (degraded.status_code, degraded.get_json()["status"]) == (200, "degraded")
    vault_check = degraded.get_json()["checks"]["vault"]
    assert vault_check.startswith("unreachable since 20")
    assert vault_check.endswith(
        f"; serving on current credentials until {expires_at:%Y-%m-%dT%H:%M:%SZ}"
    )
    app.extensions[CERTIFICATES_EXPIRE_AT_KEY] = datetime.now(UTC) - timedelta(seconds=1)
    expired = client.get("/readyz")
    assert (expired.status_code, expired.get_json()["status"]) == (503, "unavailable")
    app.extensions[CERTIFICATES_EXPIRE_AT_KEY] = expires_at
    keeper_side.succeeded()
    recovered = client.get("/readyz")
    assert (recovered.status_code, recovered.get_json()["status"]) == (200, "ok")
    status_file.write_text("garbage", encoding="utf-8")
    unknown = client.get("/readyz")
    assert (unknown.status_code, unknown.get_json()["status"]) == (200, "degraded")
    assert unknown.get_json()["checks"]["vault"].startswith("unknown")


def test_certificate_expiry_is_read_from_the_worker_files(tmp_path: Path) -> None:
    from eventsvc.credentials import Credentials
    from support import CHECKPOINT_SIGNER, write_test_pki

    _, cert_file, _ = write_test_pki(tmp_path)
    keys = {"token_pepper": SecretStr("p" * 32), "audit_key": SecretStr("k" * 32)}
    assert Credentials(**keys, checkpoint_signer=CHECKPOINT_SIGNER).certificates_expire_at() is None
    expires_at = Credentials(
        **keys, checkpoint_signer=CHECKPOINT_SIGNER, tls_cert_file=cert_file
    ).certificates_expire_at()
    assert expires_at is not None
    assert timedelta(hours=23) < expires_at - datetime.now(UTC) <= timedelta(days=1)
