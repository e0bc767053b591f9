import sqlite3

from flask import Blueprint, Flask, request
from sqlalchemy import text

app = Flask(__name__)
bp = Blueprint("reports", __name__)


def db_session():
    return None


def connect():
    return sqlite3.connect("/var/lib/eventsvc/reports.db")


@bp.get("/reports")
def reports():
    owner = request.args["owner"]
    # ruleid: flask-sql-injection
    rows = connect().execute(f"SELECT * FROM reports WHERE owner = '{owner}'").fetchall()
    return {"reports": rows}


@bp.get("/reports/<report_id>")
def report(report_id):
    session = db_session()
    # ruleid: flask-sql-injection
    return dict(session.execute(text("SELECT * FROM reports WHERE id = " + report_id)).one())


@app.post("/reports/sort")
def sort_reports():
    column = request.get_json()["order_by"]
    cursor = connect().cursor()
    # ruleid: flask-sql-injection
    cursor.execute("SELECT * FROM reports ORDER BY %s" % column)
    return {"reports": cursor.fetchall()}


@bp.get("/reports/safe")
def reports_safe():
    owner = request.args["owner"]
    # ok: flask-sql-injection
    rows = connect().execute("SELECT * FROM reports WHERE owner = ?", (owner,)).fetchall()
    return {"reports": rows}


@bp.get("/reports/safe/<report_id>")
def report_safe(report_id):
    session = db_session()
    # ok: flask-sql-injection
    statement = text("SELECT * FROM reports WHERE id = :id").bindparams(id=report_id)
    return dict(session.execute(statement).one())
