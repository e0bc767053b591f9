# A module outside eventsvc/api/ (say eventsvc/admin/maintenance.py): the rule applies to
# routes in any module, registered on the app, on a blueprint, by add_url_rule or as a
# class-based view.
from flask import Blueprint, Flask
from flask.views import MethodView
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.view import APIView

from eventsvc import auth
from eventsvc.auth import public_route, require_scope

app = Flask(__name__)
bp = Blueprint("maintenance", __name__, url_prefix="/admin")
api = APIBlueprint("reports", __name__, url_prefix="/api/v1")


# ruleid: flask-route-without-auth
@bp.get("/events")
def list_events():
    return []


# ruleid: flask-route-without-auth
@bp.route("/events/<event_id>", methods=["DELETE"])
def delete_event(event_id):
    return "", 204


# ruleid: flask-route-without-auth
@app.post("/admin/reindex")
def reindex():
    return {"started": True}, 202


# ruleid: flask-route-without-auth
@api.patch("/reports/<report_id>", summary="Change a report")
def patch_report(path):
    return {}


# A decorator that is not an authorisation decision does not count.
# ruleid: flask-route-without-auth
@bp.post("/cache/flush")
@app.after_request
def flush_cache():
    return "", 204


# A probe path is not public by itself: it must say so.
# ruleid: flask-route-without-auth
@bp.get("/healthz")
def healthz_unmarked():
    return {"status": "ok"}


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
@api.delete("/reports/<report_id>")
@auth.require_scope("events:admin")
def delete_report(path):
    return "", 204


# ok: flask-route-without-auth
@bp.get("/healthz")
@public_route("liveness probe; says only that the process answers")
def healthz():
    return {"status": "ok"}


# ok: flask-route-without-auth
def helper():
    return None


def purge():
    return "", 204


def export():
    return {}


@require_scope("events:admin")
def compact():
    return "", 204


def version():
    return {"version": "1"}


# ruleid: flask-route-without-auth
app.add_url_rule("/admin/purge", view_func=purge, methods=["POST"])
# ruleid: flask-route-without-auth
bp.add_url_rule("/export", "export", export)
# ok: flask-route-without-auth
bp.add_url_rule("/compact", view_func=compact, methods=["POST"])
# ok: flask-route-without-auth
app.add_url_rule("/admin/export", view_func=require_scope("events:read")(export))
# ok: flask-route-without-auth
app.add_url_rule("/version", view_func=public_route("build version, no data")(version))


class TokenAdmin(MethodView):
    # ruleid: flask-route-without-auth
    def post(self):
        return {}, 201

    # ok: flask-route-without-auth
    @require_scope("tokens:admin")
    def delete(self, token_id):
        return "", 204

    # ok: flask-route-without-auth
    def _render(self):
        return {}


class AuditExport(MethodView):
    decorators = [require_scope("audit:read")]

    # ok: flask-route-without-auth
    def get(self):
        return []


# ok: flask-route-without-auth
app.add_url_rule("/admin/tokens", view_func=TokenAdmin.as_view("token_admin"))


api_view = APIView(url_prefix="/api/v1/exports")


@api_view.route("/<export_id>")
class Export:
    # ruleid: flask-route-without-auth
    @api_view.doc(summary="Delete an export")
    def delete(self, path):
        return "", 204

    # ok: flask-route-without-auth
    @api_view.doc(summary="Read an export")
    @require_scope("events:read")
    def get(self, path):
        return {}
