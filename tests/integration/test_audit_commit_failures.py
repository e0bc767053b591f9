"""Failures after the audit write: the record must live and die with its change (issue #14).

test_store_audit_atomicity.py fails the audit write itself, which cannot tell
whether the record was written *inside* the change's transaction. Here the
audit record is written, and then the commit fails, or reports a transient
error so that ``with_transaction`` runs the work again. A record written
outside the transaction would then be left behind as an orphan (commit
failed) or as a duplicate (work retried).

The fault is injected in the client session's ``commit_transaction``, on the
real MongoDB: the transaction is aborted on the server, then the error a
failed commit produces is raised. (A server ``failCommand`` fail point would
need ``enableTestCommands``, which the test mongod does not run with.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.client_session import ClientSession
from pymongo.errors import OperationFailure

from devstack.mongod import RunningMongod
from eventsvc.store import EventStore, NewEvent
from support import TEST_CONTEXT

# WriteConflict: what a concurrent writer causes; the server labels it transient.
WRITE_CONFLICT = 112


def count(mongod: RunningMongod, collection: str, query: dict[str, Any]) -> int:
    with mongod.admin_client() as admin:
        return admin["eventsvc"][collection].count_documents(query)


def hard_failure() -> OperationFailure:
    return OperationFailure("injected commit failure", code=8000)


def transient_failure() -> OperationFailure:
    return OperationFailure(
        "injected write conflict at commit",
        code=WRITE_CONFLICT,
        details={"errorLabels": ["TransientTransactionError"]},
    )


@pytest.fixture
def fail_commits(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> Callable[[int, Callable[[], OperationFailure]], list[int]]:
    """Make the next ``times`` commits on the store's client abort and raise ``error()``.

    Returns a one-element list counting the commits that were failed, so a
    test can check the fault really fired.
    """
    client = store.client
    real_start_session = client.start_session

    def arm(times: int, error: Callable[[], OperationFailure]) -> list[int]:
        failed = [0]

        def start_session(**options: Any) -> ClientSession:
            session = real_start_session(**options)
            real_commit = session.commit_transaction

            def commit_transaction() -> None:
                if failed[0] < times:
                    failed[0] += 1
                    session.abort_transaction()  # nothing of this attempt is committed
                    raise error()
                real_commit()

            monkeypatch.setattr(session, "commit_transaction", commit_transaction)
            return session

        monkeypatch.setattr(client, "start_session", start_session)
        return failed

    return arm


def test_a_failed_commit_leaves_neither_the_event_nor_its_record(
    store: EventStore,
    mongod: RunningMongod,
    fail_commits: Callable[[int, Callable[[], OperationFailure]], list[int]],
    clean_db: None,
) -> None:
    # The record holds only digests of the event, so count every create record.
    records_before = count(mongod, "audit", {"action": "event.create"})
    failed = fail_commits(1, hard_failure)
    new_event = NewEvent("commit fails", datetime(2026, 1, 1, tzinfo=UTC), {})
    with pytest.raises(OperationFailure, match="injected commit failure"):
        store.create(new_event, TEST_CONTEXT, idempotency_key="commit-fail-0001")
    assert failed == [1]
    assert count(mongod, "events", {"name": "commit fails"}) == 0
    assert count(mongod, "idempotency_keys", {"_id": "commit-fail-0001"}) == 0
    assert count(mongod, "audit", {"action": "event.create"}) == records_before


def test_a_failed_commit_leaves_no_record_of_stop_or_delete(
    store: EventStore,
    mongod: RunningMongod,
    fail_commits: Callable[[int, Callable[[], OperationFailure]], list[int]],
    clean_db: None,
) -> None:
    event = store.create(NewEvent("kept", None, {}), TEST_CONTEXT).event
    failed = fail_commits(2, hard_failure)
    with pytest.raises(OperationFailure, match="injected"):
        store.stop(event.id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    with pytest.raises(OperationFailure, match="injected"):
        store.delete(event.id, TEST_CONTEXT)
    assert failed == [2]
    assert store.get(event.id).stop_event is None
    for action in ("event.stop", "event.delete"):
        assert count(mongod, "audit", {"action": action, "target": event.id}) == 0, action


def test_a_retried_transaction_leaves_exactly_one_record(
    store: EventStore,
    mongod: RunningMongod,
    fail_commits: Callable[[int, Callable[[], OperationFailure]], list[int]],
    clean_db: None,
) -> None:
    failed = fail_commits(1, transient_failure)
    created = store.create(NewEvent("retried", None, {}), TEST_CONTEXT).event
    assert failed == [1]  # the work really ran twice
    assert count(mongod, "events", {"name": "retried"}) == 1
    assert count(mongod, "audit", {"action": "event.create", "target": created.id}) == 1

    failed = fail_commits(1, transient_failure)
    store.stop(created.id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    assert failed == [1]
    assert count(mongod, "audit", {"action": "event.stop", "target": created.id}) == 1
