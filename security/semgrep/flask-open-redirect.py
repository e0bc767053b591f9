from flask import Blueprint, Flask, Response, redirect, request, url_for

app = Flask(__name__)
bp = Blueprint("login", __name__)


@bp.get("/login/done")
def login_done():
    # ruleid: flask-open-redirect
    return redirect(request.args.get("next", "/"))


@app.get("/go/<path:target>")
def go(target):
    response = Response(status=302)
    # ruleid: flask-open-redirect
    response.headers["Location"] = target
    return response


@app.post("/events/moved")
def moved():
    # ruleid: flask-open-redirect
    return Response(status=303, headers={"Location": request.form["to"]})


@bp.get("/events/<event_id>/latest")
def latest(event_id):
    # ok: flask-open-redirect
    return redirect(url_for("events.get_event", event_id=event_id))


@bp.get("/home")
def home():
    # ok: flask-open-redirect
    return redirect("/docs")
