from flask import Blueprint, Flask, request, session
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFProtect

from eventsvc.auth import require_scope

app = Flask(__name__)
csrf = CSRFProtect()
bp = Blueprint("account", __name__)


# ruleid: flask-cookie-auth-without-csrf
@bp.post("/account/email")
def change_email(store):
    store.set_email(session["user_id"], request.form["email"])
    return "", 204


# ruleid: flask-cookie-auth-without-csrf
@app.route("/events/<event_id>", methods=["DELETE"])
def delete_event(store, event_id):
    if request.cookies.get("role") != "admin":
        return "", 403
    store.delete(event_id)
    return "", 204


# ruleid: flask-cookie-auth-without-csrf
@bp.patch("/account/name")
@login_required
def rename(store):
    store.rename(current_user.id, request.form["name"])
    return "", 204


# ok: flask-cookie-auth-without-csrf
@bp.post("/account/email/protected")
def change_email_protected(store):
    csrf.protect()
    store.set_email(session["user_id"], request.form["email"])
    return "", 204


# ok: flask-cookie-auth-without-csrf
@bp.post("/events")
@require_scope("events:write")
def create_event(store):
    return store.create(request.get_json()), 201


# ok: flask-cookie-auth-without-csrf
@bp.get("/account")
def account(store):
    return store.get(session["user_id"])
