import asyncio
import os
import subprocess
import uuid

from flask import Blueprint, Flask, request

app = Flask(__name__)
bp = Blueprint("tools", __name__)
FORMATS = {"csv": "--csv", "json": "--json"}


@bp.post("/exports")
def export():
    fmt = request.get_json()["format"]
    # ruleid: flask-command-injection
    subprocess.run(["eventsvc-export", fmt], check=True)
    return "", 202


@app.get("/diagnostics/ping")
def ping():
    host = request.args.get("host", "localhost")
    # ruleid: flask-command-injection
    out = subprocess.check_output(f"ping -c 1 {host}", shell=True)
    return out


@bp.post("/archive/<name>")
def archive(name):
    # ruleid: flask-command-injection
    os.execvp("tar", ["tar", "czf", f"/srv/{name}.tgz", "/srv/data"])


@bp.post("/reindex")
async def reindex():
    collection = request.form["collection"]
    # ruleid: flask-command-injection
    await asyncio.create_subprocess_exec("mongosh", "--eval", collection)
    return "", 202


@bp.post("/exports/allowlisted")
def export_allowlisted():
    flag = FORMATS.get(request.get_json()["format"], "--json")
    # ok: flask-command-injection
    subprocess.run(["eventsvc-export", "--json"], check=True)
    return flag, 202


@bp.post("/exports/<export_id>/retry")
def retry(export_id):
    # ok: flask-command-injection
    subprocess.run(["eventsvc-export", "--retry", "--", str(uuid.UUID(export_id))], check=True)
    return "", 202


def nightly():
    # ok: flask-command-injection
    subprocess.run(["eventsvc-export", "--all"], check=True)
