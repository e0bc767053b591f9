import uuid
from pathlib import Path

from flask import Blueprint, abort, request
from werkzeug.utils import secure_filename

bp = Blueprint("attachments", __name__)
UPLOADS = Path("/srv/eventsvc/uploads")
ALLOWED = {".csv", ".json"}


@bp.post("/attachments")
def attach():
    upload = request.files["attachment"]
    # ruleid: flask-upload-unrestricted
    upload.save(UPLOADS / secure_filename(upload.filename))
    return "", 201


@bp.post("/attachments/many")
def attach_many():
    for upload in request.files.getlist("attachments"):
        # ruleid: flask-upload-unrestricted
        upload.save(UPLOADS / uuid.uuid4().hex)
    return "", 201


@bp.post("/attachments/checked")
def attach_checked():
    upload = request.files["attachment"]
    if Path(upload.filename or "").suffix.lower() not in ALLOWED:
        abort(415)
    # ok: flask-upload-unrestricted
    upload.save(UPLOADS / f"{uuid.uuid4().hex}{Path(upload.filename).suffix.lower()}")
    return "", 201


@bp.post("/attachments/typed")
def attach_typed():
    upload = request.files.get("attachment")
    if upload is None or upload.mimetype != "text/csv":
        abort(415)
    # ok: flask-upload-unrestricted
    upload.save(UPLOADS / f"{uuid.uuid4().hex}.csv")
    return "", 201
