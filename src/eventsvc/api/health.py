"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, json
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from eventsvc.api.schemas import Health, Problem
from eventsvc.api.services import certificates_expire_at, event_store
from eventsvc.auth import public_route
from eventsvc.store import StoreUnavailable

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
    """Ready means every dependency answers: out of rotation otherwise.

    MongoDB must answer a ping, and the worker's certificates (MongoDB client
    and HTTPS, issued by Vault) must not have expired, which happens when the
    lease keeper cannot reach Vault for too long.
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
        checks["certificates"] = f"ok (valid until {expires_at:%Y-%m-%dT%H:%M:%SZ})"
    else:
        checks["certificates"] = f"expired at {expires_at:%Y-%m-%dT%H:%M:%SZ}"
    ready = checks["mongodb"] == "ok" and certificates_ok
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return Response(json.dumps(body), status=200 if ready else 503, mimetype="application/json")
