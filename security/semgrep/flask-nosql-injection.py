import re

import bson
from flask import Blueprint, Flask, request

app = Flask(__name__)
bp = Blueprint("events", __name__)


@app.route("/events")
def list_events(db):
    name = request.args.get("name")
    # ruleid: flask-request-to-mongo-query
    return list(db.events.find({"name": name}))


@bp.post("/search")
def search(db):
    body = request.get_json()
    # ruleid: flask-request-to-mongo-query
    return list(db.events.find(body))


@bp.get("/by-pattern")
def by_pattern(db):
    # ruleid: flask-request-to-mongo-query
    return list(db.events.find({"name": {"$regex": request.args["q"]}}))


@bp.get("/expr")
def by_expr(db):
    field = request.form["field"]
    pipeline = [{"$match": {"$expr": {"$gt": [field, 1]}}}]
    # ruleid: flask-request-to-mongo-query
    return list(db.events.aggregate(pipeline))


@bp.get("/events/<event_id>")
def get_event(db, event_id):
    # ruleid: flask-request-to-mongo-query
    return db.events.find_one({"_id": event_id})


@bp.delete("/events/<event_id>")
def delete_event(db, event_id):
    # ruleid: flask-request-to-mongo-query
    db.events.delete_one({"_id": event_id})


@bp.patch("/events/<event_id>")
def patch_event(db, event_id):
    changes = request.json
    # ruleid: flask-request-to-mongo-query
    db.events.update_one({"_id": bson.ObjectId(event_id)}, {"$set": changes})


@bp.get("/events/<event_id>/safe")
def get_event_safe(db, event_id):
    # ok: flask-request-to-mongo-query
    return db.events.find_one({"_id": bson.ObjectId(event_id)})


@bp.get("/safe-regex")
def safe_regex(db):
    # ok: flask-request-to-mongo-query
    return list(db.events.find({"name": {"$regex": re.escape(request.args["q"])}}))


@bp.get("/limit")
def limited(db):
    limit = int(request.args.get("limit", "10"))
    # ok: flask-request-to-mongo-query
    return list(db.events.find({"kind": "public"}).limit(limit))


def not_a_route(db, name):
    # ok: flask-request-to-mongo-query
    return db.events.find({"name": name})


def server_side_js(db, code):
    # ruleid: mongo-server-side-javascript
    return db.events.find({"$where": code})


def normal_operators(db, start):
    # ok: mongo-server-side-javascript
    return db.events.find({"start_event": {"$gte": start}})
