import json

from flask import Blueprint, Flask, Response, jsonify, make_response, render_template, request
from markupsafe import Markup, escape

app = Flask(__name__)
bp = Blueprint("pages", __name__)


@bp.get("/hello")
def hello():
    name = request.args.get("name", "world")
    # ruleid: flask-xss
    return f"<h1>Hello {name}</h1>"


@bp.get("/events/<event_id>/title")
def title(event_id):
    # ruleid: flask-xss
    return "<title>" + event_id + "</title>"


@app.post("/preview")
def preview():
    body = request.get_json()["description"]
    # ruleid: flask-xss
    return Response(body, mimetype="text/html")


@app.get("/banner")
def banner():
    # ruleid: flask-xss
    return make_response(f"<div>{request.cookies.get('banner')}</div>")


@app.get("/note")
def note():
    # ruleid: flask-xss
    return render_template("note.html", note=Markup(request.args["note"]))


@bp.get("/hello/escaped")
def hello_escaped():
    name = request.args.get("name", "world")
    # ok: flask-xss
    return f"<h1>Hello {escape(name)}</h1>"


@bp.get("/hello/template")
def hello_template():
    # ok: flask-xss
    return render_template("hello.html", name=request.args.get("name", "world"))


@app.post("/echo")
def echo():
    body = request.get_json()
    # ok: flask-xss
    return Response(json.dumps({"received": body}), mimetype="application/json")


@app.post("/echo/problem")
def echo_problem():
    detail = request.get_json()["detail"]
    # ok: flask-xss
    return Response(detail, status=400, mimetype="application/problem+json")


@app.get("/echo/jsonify")
def echo_jsonify():
    # ok: flask-xss
    return jsonify(name=request.args["name"])
