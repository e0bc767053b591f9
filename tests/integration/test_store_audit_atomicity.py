"""Through the real store: a change and its audit record commit together or not at all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.mongod import RunningMongod
from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AuditRecord
from eventsvc.store import EventStore, NewEvent
from support import CHECKPOINT_SIGNER, TEST_CONTEXT


class FailingAuditLog(AuditLog):
    """A real audit log whose append fails after the change was written in the transaction."""

    def append(self, *args: Any, **kwargs: Any) -> AuditRecord:
        raise RuntimeError("injected audit failure")


def count(mongod: RunningMongod, collection: str, query: dict[str, Any]) -> int:
    with mongod.admin_client() as admin:
        return admin["eventsvc"][collection].count_documents(query)


def test_a_failed_audit_write_undoes_the_create(
    store: EventStore, mongod: RunningMongod, audit_key: bytes, clean_db: None
) -> None:
    failing = EventStore(
        store.client, "eventsvc", FailingAuditLog(store.database, audit_key, CHECKPOINT_SIGNER)
    )
    new_event = NewEvent("never stored", datetime(2026, 1, 1, tzinfo=UTC), {})
    with pytest.raises(RuntimeError, match="injected"):
        failing.create(new_event, TEST_CONTEXT, idempotency_key="atomic-key-0001")
    assert count(mongod, "events", {"name": "never stored"}) == 0
    assert count(mongod, "idempotency_keys", {"_id": "atomic-key-0001"}) == 0


def test_a_failed_audit_write_undoes_stop_and_delete(
    store: EventStore, mongod: RunningMongod, audit_key: bytes, clean_db: None
) -> None:
    event = store.create(NewEvent("kept", None, {}), TEST_CONTEXT).event
    failing = EventStore(
        store.client, "eventsvc", FailingAuditLog(store.database, audit_key, CHECKPOINT_SIGNER)
    )
    with pytest.raises(RuntimeError, match="injected"):
        failing.stop(event.id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    with pytest.raises(RuntimeError, match="injected"):
        failing.delete(event.id, TEST_CONTEXT)
    after = store.get(event.id)
    assert after.stop_event is None
    assert after.version == 1


def test_every_successful_change_has_exactly_one_record(
    store: EventStore, mongod: RunningMongod, clean_db: None
) -> None:
    event = store.create(NewEvent("audited", None, {}), TEST_CONTEXT).event
    store.stop(event.id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    store.delete(event.id, TEST_CONTEXT)
    for action in ("event.create", "event.stop", "event.delete"):
        assert count(mongod, "audit", {"action": action, "target": event.id}) == 1, action
