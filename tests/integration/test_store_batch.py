"""The store's create paths: all or nothing, in the fewest round trips (with the audit record).

Round trips are counted with pymongo's command monitoring on a second client
of the real app user; nothing is timed.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pydantic import SecretStr
from pymongo import monitoring
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


def test_after_a_batch_the_next_create_chains_from_its_last_record_without_a_read(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """The batch's last record, not its first, is the known tip once the batch committed."""
    store, commands = listened
    store.create(NewEvent("warm the chain", None, {}), TEST_CONTEXT)
    store.create_many([item(f"b{n}") for n in range(3)], TEST_CONTEXT)
    commands.commands.clear()
    store.create(NewEvent("after the batch", None, {}), TEST_CONTEXT)
    assert [name for name, _ in commands.commands] == ["insert", "insert", "commitTransaction"]
    assert commands.on(AUDIT) == ["insert"]


DUPLICATE_KEY = 11000


class Interposer(monitoring.CommandListener):
    """Another writer acting the moment one of our inserts into ``collection`` is refused.

    ``act`` runs (on another client) after the refused insert, before our
    transaction is decided again: the race this store must survive, ordered.
    The ids of every document we sent to the events collection are kept.
    """

    def __init__(self, collection: str, act: Callable[[Interposer], None]) -> None:
        self.collection = collection
        self.act = act
        self.inserts: dict[int, str] = {}
        self.event_ids: list[list[ObjectId]] = []
        self.refused: list[list[int]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert":
            self.inserts[event.request_id] = event.command["insert"]
            if event.command["insert"] == EVENTS:
                self.event_ids.append([doc["_id"] for doc in event.command["documents"]])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        errors = event.reply.get("writeErrors")
        if self.inserts.get(event.request_id) == self.collection and errors:
            self.refused.append([error["code"] for error in errors])
            self.act(self)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def colliding(
    settings: Settings,
    app_password: SecretStr,
    audit_key: bytes,
    store: EventStore,
    clean_db: None,
) -> Iterator[Callable[[Callable[[Interposer], None]], tuple[EventStore, Interposer]]]:
    """A store whose audit chain another writer (same writer id) took sequence 1 of."""
    clients: list[Any] = []
    writer_id = f"collide-{secrets.token_hex(4)}"

    def make(act: Callable[[Interposer], None]) -> tuple[EventStore, Interposer]:
        interposer = Interposer(AUDIT, act)
        client = app_user_client(settings, app_password, interposer)
        clients.append(client)
        audit = AuditLog(client[APP_DATABASE], audit_key, CHECKPOINT_SIGNER, writer_id=writer_id)
        intruder = AuditLog(store.database, audit_key, CHECKPOINT_SIGNER, writer_id=writer_id)
        intruder.append_denied(TEST_CONTEXT, "t", "takes sequence 1 of the same chain")
        return EventStore(client, APP_DATABASE, audit), interposer

    try:
        yield make
    finally:
        for client in clients:
            client.close()


def test_a_batch_refused_for_a_taken_key_is_decided_again_once(
    colliding: Callable[[Callable[[Interposer], None]], tuple[EventStore, Interposer]],
    mongod: RunningMongod,
) -> None:
    store, interposer = colliding(lambda _: None)
    results = store.create_many([item("a", "collide-key-0001"), item("b")], TEST_CONTEXT)
    assert interposer.refused == [[DUPLICATE_KEY]]  # the first attempt really met the taken key
    assert [result.replayed for result in results] == [False, False]
    with mongod.admin_client() as admin:
        stored = admin[APP_DATABASE][EVENTS].count_documents({"name": {"$in": ["a", "b"]}})
    assert stored == 2


def test_a_key_taken_again_on_the_second_attempt_refuses_the_batch(
    colliding: Callable[[Callable[[Interposer], None]], tuple[EventStore, Interposer]],
    store: EventStore,
    mongod: RunningMongod,
) -> None:
    """Between the attempts another writer stores an event under the id the batch planned."""

    def take_the_planned_id(interposer: Interposer) -> None:
        now = datetime.now(UTC)
        store.database[EVENTS].insert_one(
            {
                "_id": interposer.event_ids[0][0],
                "name": "taken meanwhile",
                "start_event": now,
                "stop_event": None,
                "attributes": {},
                "version": 1,
            }
        )

    colliding_store, interposer = colliding(take_the_planned_id)
    with pytest.raises(IdempotencyKeyReused, match="in progress"):
        colliding_store.create_many([item("a", "collide-key-0002"), item("b")], TEST_CONTEXT)
    assert len(interposer.event_ids) == 2  # the second attempt was refused at the events insert
    with mongod.admin_client() as admin:
        database = admin[APP_DATABASE]
        assert database[EVENTS].count_documents({"name": {"$in": ["a", "b"]}}) == 0
        assert database[IDEMPOTENCY_KEYS].count_documents({"key": "collide-key-0002"}) == 0


def test_a_key_reused_for_another_event_is_refused_whichever_comes_first(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """Both orders of two different bodies, so no ordering of their fingerprints slips through."""
    store, _ = listened
    for number, (first, second) in enumerate([("alpha", "beta"), ("beta", "alpha")]):
        key = f"order-key-{number:04d}"
        with pytest.raises(IdempotencyKeyReused, match=r"events\[1\]"):
            store.create_many([item(first, key), item(second, key)], TEST_CONTEXT)
        assert store.create_many([item(first, key)], TEST_CONTEXT)[0].replayed is False
        with pytest.raises(IdempotencyKeyReused, match=r"events\[0\]"):
            store.create_many([item(second, key)], TEST_CONTEXT)
        assert store.create_many([item(first, key)], TEST_CONTEXT)[0].replayed is True


def test_the_same_key_twice_in_a_batch_replays_the_first_item(
    listened: tuple[EventStore, CommandLog],
) -> None:
    store, _ = listened
    results = store.create_many(
        [item("twice", "twice-key-0001"), item("twice", "twice-key-0001"), item("once")],
        TEST_CONTEXT,
    )
    assert [result.replayed for result in results] == [False, True, False]
    assert results[1].event == results[0].event
    assert results[2].event.id != results[0].event.id


def test_a_batch_replays_a_stored_key_after_an_in_batch_repeat(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """Item 1 repeats item 0's new key, item 2 a key stored earlier: both are replays."""
    store, _ = listened
    stored = store.create_many([item("stored", "mixed-key-0001")], TEST_CONTEXT)[0]
    results = store.create_many(
        [
            item("new", "mixed-key-0002"),
            item("new", "mixed-key-0002"),
            item("stored", "mixed-key-0001"),
        ],
        TEST_CONTEXT,
    )
    assert [result.replayed for result in results] == [False, True, True]
    assert results[1].event == results[0].event
    assert results[2].event == stored.event


def test_a_retry_with_its_attributes_in_another_order_is_the_same_request(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """JSON objects have no order: a client re-serialising its retry still gets a replay."""
    store, _ = listened
    first = store.create(
        NewEvent("ordered", None, {"a": "1", "b": "2"}), TEST_CONTEXT, "attrs-0001"
    )
    retried = store.create(
        NewEvent("ordered", None, {"b": "2", "a": "1"}), TEST_CONTEXT, "attrs-0001"
    )
    assert retried.replayed is True
    assert retried.event == first.event
    in_batch = store.create_many(
        [BatchItem(NewEvent("ordered", None, {"b": "2", "a": "1"}), "attrs-0001")], TEST_CONTEXT
    )
    assert in_batch[0].replayed is True


def test_a_single_create_reusing_a_key_for_another_event_is_refused_whichever_comes_first(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """Both orders of two different bodies, so no ordering of their fingerprints slips through."""
    store, _ = listened
    for number, (first, second) in enumerate([("alpha", "beta"), ("beta", "alpha")]):
        key = f"single-order-{number:04d}"
        created = store.create(NewEvent(first, None, {}), TEST_CONTEXT, key)
        with pytest.raises(IdempotencyKeyReused, match="different request"):
            store.create(NewEvent(second, None, {}), TEST_CONTEXT, key)
        again = store.create(NewEvent(first, None, {}), TEST_CONTEXT, key)
        assert again.replayed is True
        assert again.event == created.event


WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify"}


def test_every_write_commits_in_a_transaction_waiting_for_a_journaled_majority(
    listened: tuple[EventStore, CommandLog],
) -> None:
    """No write of the store's is sent outside a transaction, and every commit asks for
    ``{w: majority, j: true}``: an acknowledged change is on the journals of a majority."""
    store, commands = listened
    created = store.create(NewEvent("durable", None, {}), TEST_CONTEXT, "durable-0001")
    store.create_many([item("durable batch", "durable-0002"), item("second")], TEST_CONTEXT)
    stopped = store.stop(created.event.id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    store.delete(stopped.id, TEST_CONTEXT)
    writes = [command for command in commands.sent if WRITE_COMMANDS & command.keys()]
    assert len(writes) >= 8
    assert all("txnNumber" in command and "writeConcern" not in command for command in writes)
    commits = [command for command in commands.sent if "commitTransaction" in command]
    assert len(commits) == 4
    assert all(commit["writeConcern"] == {"w": "majority", "j": True} for commit in commits)
