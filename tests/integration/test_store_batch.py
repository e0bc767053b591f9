"""The store's create paths: all or nothing, in the fewest round trips (with the audit record).

Round trips are counted with pymongo's command monitoring on a second client
of the real app user; nothing is timed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from pymongo.client_session import ClientSession
from pymongo.errors import BulkWriteError

from devstack.mongod import RunningMongod
from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AUDIT, AuditRecord
from eventsvc.domain import MAX_BATCH_EVENTS, IdempotencyKeyReused, IdempotentResultGone
from eventsvc.settings import Settings
from eventsvc.store import (
    EVENTS,
    IDEMPOTENCY_KEYS,
    BatchItem,
    EventStore,
    NewEvent,
    run_in_transaction,
)
from support import APP_DATABASE, CHECKPOINT_SIGNER, TEST_CONTEXT, CommandLog, app_user_client


@pytest.fixture
def listened(
    settings: Settings, app_password: SecretStr, audit_key: bytes, clean_db: None
) -> Iterator[tuple[EventStore, CommandLog]]:
    commands = CommandLog()
    client = app_user_client(settings, app_password, commands)
    audit = AuditLog(client[APP_DATABASE], audit_key, CHECKPOINT_SIGNER, checkpoint_every=10_000)
    try:
        yield EventStore(client, APP_DATABASE, audit), commands
    finally:
        client.close()


def item(name: str, key: str | None = None) -> BatchItem:
    return BatchItem(NewEvent(name, None, {"k": "v"}), key)


def test_a_create_takes_three_round_trips_once_its_chain_is_known(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """Insert the event, insert its audit record, commit: the chain's tip is not read back."""
    store, commands = listened
    store.create(NewEvent("first", None, {}), TEST_CONTEXT)
    commands.commands.clear()
    store.create(NewEvent("second", None, {}), TEST_CONTEXT)
    assert [name for name, _ in commands.commands] == ["insert", "insert", "commitTransaction"]
    assert commands.on(EVENTS) == ["insert"]
    assert commands.on(AUDIT) == ["insert"]


def test_a_batch_takes_the_same_round_trips_whatever_its_size(
    listened: tuple[EventStore, CommandLog],
) -> None:
    store, commands = listened
    store.create(NewEvent("warm the chain", None, {}), TEST_CONTEXT)
    for size in (1, MAX_BATCH_EVENTS):
        commands.commands.clear()
        results = store.create_many(
            [item(f"e{n}", f"size-{size}-key-{n:04d}") for n in range(size)], TEST_CONTEXT
        )
        assert len(results) == size
        assert [name for name, _ in commands.commands] == [
            "find",  # which keys were used before
            "insert",  # idempotency records
            "insert",  # events
            "insert",  # audit records
            "commitTransaction",
        ]


class Abort(Exception):
    """Raised inside a transaction after its audit record was written."""


def test_after_an_aborted_transaction_the_chain_tip_is_read_again(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """An aborted record is never trusted as the tip: the next create settles it from MongoDB."""
    store, commands = listened
    store.create(NewEvent("before", None, {}), TEST_CONTEXT)

    def append_then_fail(session: ClientSession) -> None:
        store.audit.append_change(TEST_CONTEXT, "event.create", None, {"_id": "x"}, session=session)
        raise Abort

    with pytest.raises(Abort):
        run_in_transaction(store.client, append_then_fail)
    commands.commands.clear()
    store.create(NewEvent("after", None, {}), TEST_CONTEXT)
    assert commands.on(AUDIT) == ["find", "insert"]
    commands.commands.clear()
    store.create(NewEvent("after that", None, {}), TEST_CONTEXT)
    assert commands.on(AUDIT) == ["insert"]


def test_a_failed_batch_writes_nothing(
    listened: tuple[EventStore, CommandLog], mongod: RunningMongod
) -> None:
    store, _ = listened
    with mongod.admin_client() as admin:
        database = admin[APP_DATABASE]
        counts = [database[name].count_documents({}) for name in (EVENTS, IDEMPOTENCY_KEYS, AUDIT)]
        with pytest.raises(BulkWriteError):
            store.create_many(
                [item("kept?", "fail-key-0001"), item("x" * 300, "fail-key-0002")], TEST_CONTEXT
            )
        after = [database[name].count_documents({}) for name in (EVENTS, IDEMPOTENCY_KEYS, AUDIT)]
    assert after == counts
    # The keys were not taken: the same batch, corrected, creates both.
    results = store.create_many(
        [item("kept?", "fail-key-0001"), item("fixed", "fail-key-0002")], TEST_CONTEXT
    )
    assert [result.replayed for result in results] == [False, False]


def test_two_batches_racing_for_the_same_keys_create_each_event_once(
    listened: tuple[EventStore, CommandLog],
) -> None:
    store, _ = listened
    batch = [item(f"race {n}", f"race-key-{n:04d}") for n in range(20)]
    outcomes: list[list[str]] = []
    errors: list[IdempotencyKeyReused] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        try:
            outcomes.append([result.event.id for result in store.create_many(batch, TEST_CONTEXT)])
        except IdempotencyKeyReused as error:  # a racing transaction had not committed yet
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all("in progress" in str(error) for error in errors)
    assert outcomes, errors
    assert all(ids == outcomes[0] for ids in outcomes)
    assert len(set(outcomes[0])) == 20


def test_a_batch_size_outside_the_limits_is_refused(
    listened: tuple[EventStore, CommandLog],
) -> None:
    store, _ = listened
    for size in (0, MAX_BATCH_EVENTS + 1):
        with pytest.raises(ValueError, match="batch"):
            store.create_many([item("x")] * size, TEST_CONTEXT)


def test_a_replay_of_a_deleted_event_refuses_the_batch(
    listened: tuple[EventStore, CommandLog],
) -> None:
    store, _ = listened
    (first,) = store.create_many([item("to delete", "gone-key-0001")], TEST_CONTEXT)
    store.delete(first.event.id, TEST_CONTEXT)
    with pytest.raises(IdempotentResultGone, match=r"events\[1\].*deleted"):
        store.create_many([item("new"), item("to delete", "gone-key-0001")], TEST_CONTEXT)
    assert store.create_many([item("new")], TEST_CONTEXT)[0].replayed is False


def test_append_changes_writes_only_inside_a_transaction(
    listened: tuple[EventStore, CommandLog],
) -> None:
    store, _ = listened
    with store.client.start_session() as session, pytest.raises(ValueError, match="transaction"):
        store.audit.append_changes(
            TEST_CONTEXT, "event.create", [(None, {"_id": "x"})], session=session
        )

    def nothing(session: ClientSession) -> None:
        store.audit.append_changes(TEST_CONTEXT, "event.create", [], session=session)

    with pytest.raises(ValueError, match="one or more"):
        run_in_transaction(store.client, nothing)


def test_committed_ignores_a_record_of_another_writer(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """Only the calling thread's own pending record of this writer is promoted."""
    store, commands = listened
    other_chain = AuditLog(store.database, b"q" * 32, CHECKPOINT_SIGNER)

    def append(session: ClientSession) -> AuditRecord:
        return other_chain.append_change(
            TEST_CONTEXT, "event.create", None, {"_id": "y"}, session=session
        )

    foreign = run_in_transaction(store.client, append)
    store.audit.committed(foreign)  # not this writer's chain: nothing changes
    store.create(NewEvent("here", None, {}), TEST_CONTEXT)
    commands.commands.clear()
    store.create(NewEvent("here again", None, {}), TEST_CONTEXT)
    assert commands.on(AUDIT) == ["insert"]
