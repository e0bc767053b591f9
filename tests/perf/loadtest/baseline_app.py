"""Baseline 1 of ``make loadtest``: a bare Flask insert endpoint, no security at all.

Plain HTTP, no token, no validation, no audit record, no transaction: one
``insert_one`` with write concern majority on the same mongod as the API,
served by gunicorn with the API's worker class (gthread), workers and threads.
What the API costs per create is its rate divided by this one's.

    gunicorn ... perf.loadtest.baseline_app:app    (started by the harness)

``LOADTEST_BASELINE_CONFIG`` names a 0600 JSON file (the harness wrote it) with
the MongoDB address, CA file and a SCRAM user of a separate database.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from pymongo import MongoClient
from pymongo.write_concern import WriteConcern


def mongo_client(config: dict[str, Any]) -> MongoClient[dict[str, Any]]:
    """A client like the harness's raw pymongo baseline: TLS to mongod, SCRAM user."""
    return MongoClient(
        config["hosts"],
        replicaSet=config["replica_set"],
        tls=True,
        tlsCAFile=config["ca_file"],
        username=config["username"],
        password=config["password"],
        authSource=config["database"],
        authMechanism="SCRAM-SHA-256",
        maxPoolSize=max(100, int(config.get("threads", 8)) * 2),
    )


def create_app() -> Flask:
    config = json.loads(Path(os.environ["LOADTEST_BASELINE_CONFIG"]).read_text(encoding="utf-8"))
    client = mongo_client(config)
    collection = client[config["database"]].get_collection(
        "events", write_concern=WriteConcern("majority")
    )
    app = Flask(__name__)

    @app.post("/insert")
    def insert() -> Response:
        body = request.get_json()
        document = {
            "name": body["name"],
            "attributes": body.get("attributes", {}),
            "start_event": datetime.now(UTC),
        }
        inserted = collection.insert_one(document)
        return Response(
            json.dumps({"id": str(inserted.inserted_id)}), status=201, mimetype="application/json"
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    return app


app = create_app() if "LOADTEST_BASELINE_CONFIG" in os.environ else None
