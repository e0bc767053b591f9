import logging
import traceback

from flask import Blueprint, Flask, abort, jsonify

log = logging.getLogger(__name__)
app = Flask(__name__)
bp = Blueprint("imports", __name__)


class EventNotFound(Exception):
    """Our own error: its message is written for clients."""


@bp.post("/imports")
def run_import(store):
    try:
        store.import_batch()
    except Exception as error:
        # ruleid: flask-exception-exposure
        return jsonify(error=str(error)), 500
    return "", 202


@bp.post("/imports/retry")
def retry_import(store):
    try:
        store.import_batch()
    except Exception:
        # ruleid: flask-exception-exposure
        return {"detail": "import failed", "trace": traceback.format_exc()}, 500
    return "", 202


@app.errorhandler(Exception)
def unexpected(error):
    # ruleid: flask-exception-exposure
    return {"title": "Internal Server Error", "detail": f"{error}"}, 500


@bp.post("/imports/abort")
def abort_import(store):
    try:
        store.import_batch()
    except BaseException as error:
        # ruleid: flask-exception-exposure
        abort(500, description=repr(error))
    return "", 202


@app.errorhandler(EventNotFound)
def not_found(error):
    # ok: flask-exception-exposure
    return {"title": "Not Found", "detail": str(error)}, 404


@app.errorhandler(500)
def internal(error):
    log.exception("unhandled error")
    # ok: flask-exception-exposure
    return {"title": "Internal Server Error", "detail": "quote the request id"}, 500


@bp.get("/imports/<import_id>")
def get_import(store, import_id):
    try:
        return store.get_import(import_id)
    except EventNotFound as error:
        # ok: flask-exception-exposure
        return {"detail": str(error)}, 404
