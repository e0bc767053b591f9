import ast
import importlib

import jinja2
from flask import Blueprint, Flask, render_template, render_template_string, request

app = Flask(__name__)
bp = Blueprint("reports", __name__)
HANDLERS = {"daily": "eventsvc.reports.daily", "weekly": "eventsvc.reports.weekly"}


@bp.post("/calc")
def calc():
    expression = request.get_json()["expression"]
    # ruleid: flask-code-injection
    return {"result": eval(expression)}


@bp.get("/greeting")
def greeting():
    name = request.args.get("name", "world")
    # ruleid: flask-code-injection
    return render_template_string("<p>Hello " + name + "</p>")


@app.post("/reports/<kind>")
def report(kind):
    # ruleid: flask-code-injection
    module = importlib.import_module(f"eventsvc.reports.{kind}")
    return module.render()


@app.post("/filters")
def filters():
    source = request.form["template"]
    env = jinja2.Environment(autoescape=True)
    # ruleid: flask-code-injection
    return env.from_string(source).render()


@bp.get("/greeting/safe")
def greeting_safe():
    name = request.args.get("name", "world")
    # ok: flask-code-injection
    return render_template_string("<p>Hello {{ name }}</p>", name=name)


@bp.post("/literal")
def literal():
    # ok: flask-code-injection
    return {"value": ast.literal_eval(request.get_json()["value"])}


@app.post("/reports/safe/<kind>")
def report_safe(kind):
    # ok: flask-code-injection
    module = importlib.import_module(HANDLERS["daily"])
    return render_template("report.html", kind=kind, body=module.render())
