import re

from flask import Blueprint, request

bp = Blueprint("search", __name__)
NAMES = ["deploy", "backup", "release"]
NAME = re.compile(r"^[a-z0-9._-]{1,64}$")


@bp.get("/names")
def names():
    # ruleid: flask-regex-injection
    matcher = re.compile(request.args["pattern"])
    return {"names": [n for n in NAMES if matcher.search(n)]}


@bp.get("/names/<prefix>")
def names_with(prefix):
    # ruleid: flask-regex-injection
    return {"names": [n for n in NAMES if re.match(prefix, n)]}


@bp.get("/names/literal")
def names_literal():
    # ok: flask-regex-injection
    matcher = re.compile(re.escape(request.args["text"]))
    return {"names": [n for n in NAMES if matcher.search(n)]}


@bp.get("/names/valid/<name>")
def valid(name):
    # ok: flask-regex-injection
    return {"valid": NAME.fullmatch(name) is not None}
