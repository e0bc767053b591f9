"""DenialRecorder on the real audit collection: windows, counts, the key bound, verification."""

from __future__ import annotations

import secrets

import pytest
from pymongo.database import Database

from devstack.mongod import RunningMongod
from eventsvc.audit.denials import OVERFLOW_SOURCE, DenialKey, DenialRecorder
from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AUDIT, AUDIT_CHECKPOINTS, Document
from eventsvc.audit.verify import verify
from eventsvc.domain import RequestContext
from eventsvc.settings import Settings
from eventsvc.store import EventStore

KEY_BYTES = secrets.token_bytes(32)
KEY = DenialKey(source="address:192.0.2.9", reason="401 no_token", route="GET /api/v1/events")
CONTEXT = RequestContext(actor="anonymous", client_address="192.0.2.9", request_id="r-1")


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def audit(
    store: EventStore, settings: Settings, mongod: RunningMongod
) -> tuple[AuditLog, Database[Document]]:
    """A writer on emptied audit collections (emptied as root: the app cannot)."""
    with mongod.admin_client() as admin:
        admin[settings.mongodb_database][AUDIT].delete_many({})
        admin[settings.mongodb_database][AUDIT_CHECKPOINTS].delete_many({})
    database = store.client[settings.mongodb_database]
    return AuditLog(database, KEY_BYTES), database


def denied(database: Database[Document]) -> list[Document]:
    in_chain_order = [("chain", 1), ("sequence", 1)]
    return list(database[AUDIT].find({"action": "request.denied"}, sort=in_chain_order))


def test_first_denial_is_written_at_once_and_the_rest_of_the_window_as_one_count(
    audit: tuple[AuditLog, Database[Document]],
) -> None:
    log, database = audit
    clock = FakeClock()
    recorder = DenialRecorder(log, window_seconds=60, clock=clock)
    for _ in range(3):
        recorder.record(KEY, CONTEXT)
    assert [record["count"] for record in denied(database)] == [1]
    recorder.flush()  # the window is still open: nothing more yet
    assert len(denied(database)) == 1
    clock.now += 61
    recorder.record(KEY, CONTEXT)  # closes the first window (2 more), opens a second
    recorder.record(KEY, CONTEXT)
    recorder.flush(everything=True)  # as at worker exit
    counts = [record["count"] for record in denied(database)]
    assert counts == [1, 2, 1, 1]
    assert sum(counts) == 5
    assert all(record["target"] == "GET /api/v1/events" for record in denied(database))
    assert verify(database, KEY_BYTES).ok  # aggregated records are ordinary chain links


def test_keys_beyond_the_bound_are_folded_into_the_overflow_source(
    audit: tuple[AuditLog, Database[Document]],
) -> None:
    log, database = audit
    recorder = DenialRecorder(log, max_keys=2, clock=FakeClock())
    for number in range(50):  # 50 sources, e.g. a botnet
        source = f"address:192.0.2.{number}"
        recorder.record(DenialKey(source, KEY.reason, KEY.route), CONTEXT)
    recorder.flush(everything=True)
    records = denied(database)
    assert len(records) <= 2 * 3  # two real keys and the overflow key, two records each
    assert sum(record["count"] for record in records) == 50
    assert OVERFLOW_SOURCE in {record["client_address"] for record in records}
