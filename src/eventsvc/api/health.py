"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask import Response, current_app, json
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from eventsvc.api.schemas import Health
from eventsvc.store import EventStore, StoreUnavailable

health_tag = Tag(name="health", description="Probes")
blueprint = APIBlueprint("health", __name__, abp_tags=[health_tag])


@blueprint.get("/healthz", responses={200: Health}, summary="Process is alive")
def healthz() -> Response:
    """Alive means the process answers; it checks no dependency on purpose."""
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@blueprint.get("/readyz", responses={200: Health, 503: Health}, summary="Ready to serve")
def readyz() -> Response:
    """Ready means MongoDB answers: take the instance out of rotation otherwise."""
    store: EventStore = current_app.extensions["eventsvc.store"]
    try:
        store.ping()
    except StoreUnavailable:
        body = {"status": "unavailable", "checks": {"mongodb": "unreachable"}}
        return Response(json.dumps(body), status=503, mimetype="application/json")
    return Response(
        json.dumps({"status": "ok", "checks": {"mongodb": "ok"}}), mimetype="application/json"
    )
