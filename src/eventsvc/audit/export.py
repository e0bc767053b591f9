"""The audit trail for auditors: records and checkpoints in a time range, with their proof.

The API serves these as JSON lines (``GET /api/v1/audit``); whoever holds
the key checks them offline (``eventsvc audit verify``, or by hand as
:mod:`eventsvc.audit.record` describes).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database

from eventsvc.audit.record import AUDIT, AUDIT_CHECKPOINTS, Document, wire_form


def export(
    database: Database[Document], start: datetime | None, end: datetime | None
) -> Iterator[Document]:
    """Records with ``start <= time < end`` (oldest first), then the checkpoints in that range.

    Each dict is JSON-ready and carries its proof: records their ``chain``,
    ``sequence``, ``prev_hash`` and ``hash``; checkpoints their ``heads`` and
    ``signature``.
    """
    time_range: Document = {}
    if start is not None:
        time_range["$gte"] = start
    if end is not None:
        time_range["$lt"] = end
    query: Document = {"time": time_range} if time_range else {}
    records = database[AUDIT].find(
        query, sort=[("time", ASCENDING), ("chain", ASCENDING), ("sequence", ASCENDING)]
    )
    for document in records:
        yield {"type": "record", **wire_form(document)}
    for document in database[AUDIT_CHECKPOINTS].find(query, sort=[("time", ASCENDING)]):
        yield {"type": "checkpoint", **wire_form(document)}
