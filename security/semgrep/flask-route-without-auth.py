from flask import Blueprint

from eventsvc.auth import require_scope

bp = Blueprint("events", __name__)


# ruleid: flask-route-without-auth
@bp.get("/events")
def list_events():
    return []


# ruleid: flask-route-without-auth
@bp.route("/events/<event_id>", methods=["DELETE"])
def delete_event(event_id):
    return "", 204


# ok: flask-route-without-auth
@bp.get("/events/<event_id>")
@require_scope("events:read")
def get_event(event_id):
    return {}


# ok: flask-route-without-auth
@bp.post("/events")
@require_scope("events:write")
def create_event():
    return {}, 201


# ok: flask-route-without-auth
@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


# ok: flask-route-without-auth
def helper():
    return None
