import os
import pathlib
import shutil

from flask import Blueprint, Flask, request, send_file, send_from_directory
from werkzeug.security import safe_join
from werkzeug.utils import secure_filename

app = Flask(__name__)
bp = Blueprint("exports", __name__, url_prefix="/exports")
EXPORT_DIR = pathlib.Path("/var/lib/eventsvc/exports")


@bp.get("/<name>")
def download(name):
    # ruleid: flask-path-traversal
    return send_file(os.path.join("/var/lib/eventsvc/exports", name))


@bp.get("/raw")
def raw():
    path = request.args["path"]
    # ruleid: flask-path-traversal
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@app.delete("/exports/<name>")
def delete_export(name):
    # ruleid: flask-path-traversal
    (EXPORT_DIR / name).unlink()
    return "", 204


@app.post("/exports/archive")
def archive():
    target = request.get_json()["target"]
    # ruleid: flask-path-traversal
    shutil.copy("/var/lib/eventsvc/exports/latest.json", target)
    return "", 204


@app.post("/uploads")
def upload():
    attachment = request.files["attachment"]
    # ruleid: flask-path-traversal
    attachment.save(os.path.join("/srv/uploads", attachment.filename))
    return "", 201


@bp.get("/report/<year>")
def report(year):
    # ruleid: flask-path-traversal
    return pathlib.Path(EXPORT_DIR, f"report-{year}.csv").read_text(encoding="utf-8")


@app.post("/uploads/safe")
def upload_safe():
    attachment = request.files["attachment"]
    # ok: flask-path-traversal
    attachment.save(os.path.join("/srv/uploads", secure_filename(attachment.filename)))
    return "", 201


@bp.get("/safe/<name>")
def download_safe(name):
    # ok: flask-path-traversal
    return send_from_directory(EXPORT_DIR, name)


@bp.get("/joined/<name>")
def download_joined(name):
    # ok: flask-path-traversal
    return send_file(safe_join("/var/lib/eventsvc/exports", name))


@bp.get("/by-id/<int:export_id>")
def by_id(export_id):
    # ok: flask-path-traversal
    return send_file(EXPORT_DIR / f"{int(export_id)}.json")


def latest_export():
    # ok: flask-path-traversal
    return (EXPORT_DIR / "latest.json").read_text(encoding="utf-8")
