"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, json
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from eventsvc.api.schemas import Health, Problem
from eventsvc.api.services import certificates_expire_at, event_store, vault_status_file
from eventsvc.auth import public_route
from eventsvc.store import StoreUnavailable
from eventsvc.vault.status import read_status

_TIME = "%Y-%m-%dT%H:%M:%SZ"
health_tag = Tag(name="health", description="Probes")
# flask-openapi3 documents a 400 for every route; ours is a problem+json object.
blueprint = APIBlueprint("health", __name__, abp_tags=[health_tag], abp_responses={400: Problem})


@blueprint.get("/healthz", responses={200: Health}, summary="Process is alive")
@public_route("liveness probe for load balancers; says only that the process answers")
def healthz() -> Response:
    """Alive means the process answers; it checks no dependency on purpose."""
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@blueprint.get("/readyz", responses={200: Health, 503: Health}, summary="Ready to serve")
@public_route("readiness probe for orchestrators; dependency states, no data")
def readyz() -> Response:
    """Ready means the worker can serve: 200 "ok", or 200 "degraded", or 503 "unavailable".

    MongoDB must answer a ping, and the worker's certificates (MongoDB client
    and HTTPS, issued by Vault) must not have expired, which happens when the
    lease keeper cannot reach Vault for too long. Before that, Vault out of
    reach is "degraded": the instance stays in rotation on its current
    credentials, and the check says until when.
    """
    checks: dict[str, str] = {}
    try:
        event_store().ping()
        checks["mongodb"] = "ok"
    except StoreUnavailable:
        checks["mongodb"] = "unreachable"
    expires_at = certificates_expire_at()
    certificates_ok = expires_at is None or expires_at > datetime.now(UTC)
    if expires_at is None:
        checks["certificates"] = "none"
    elif certificates_ok:
        checks["certificates"] = f"ok (valid until {expires_at:{_TIME}})"
    else:
        checks["certificates"] = f"expired at {expires_at:{_TIME}}"
    vault_ok = _check_vault(checks, expires_at)
    ready = checks["mongodb"] == "ok" and certificates_ok
    status = "unavailable" if not ready else "ok" if vault_ok else "degraded"
    body = {"status": status, "checks": checks}
    return Response(json.dumps(body), status=200 if ready else 503, mimetype="application/json")


def _check_vault(checks: dict[str, str], expires_at: datetime | None) -> bool:
    """Add the lease keeper's last word on Vault to ``checks``; False: not ok (or unknown)."""
    path = vault_status_file()
    if path is None:
        return True  # no Vault: nothing to say
    found = read_status(path)
    if found is None:
        checks["vault"] = "unknown (unreadable status file)"
        return False
    if found.reachable:
        checks["vault"] = "ok"
        return True
    since = "?" if found.since is None else f"{found.since:{_TIME}}"
    until = "?" if expires_at is None else f"{expires_at:{_TIME}}"
    checks["vault"] = f"unreachable since {since}; serving on current credentials until {until}"
    return False
