"""The audit trail against a real mongod: atomicity with the change, least privilege, tampering.

The attacker is played by the root user (``mongod.admin_client()``): it can
rewrite the database at will but does not hold the HMAC key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pydantic import SecretStr
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from devstack.database import migrate
from devstack.mongod import RunningMongod
from eventsvc.audit.export import export
from eventsvc.audit.log import AuditLog, start_checkpoints
from eventsvc.audit.record import (
    AUDIT,
    AUDIT_CHECKPOINTS,
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    ChainHead,
    checkpoint_hash,
    checkpoint_message,
    next_record,
    record_hash,
    wire_form,
)
from eventsvc.audit.signing import LocalCheckpointSigner, signature_ok
from eventsvc.audit.verify import ChainReport, read_checkpoints, verify
from eventsvc.clock import rfc3339
from eventsvc.settings import Settings
from eventsvc.store import EventStore, connect
from perf.audit_bench import benchmark
from support import CHECKPOINT_KEYS, CHECKPOINT_SIGNER

UNAUTHORIZED = 13
Document = dict[str, Any]


class InjectedFailure(Exception):
    """Raised between the audit insert and the commit."""


def entry(number: int = 0, **changes: Any) -> AuditEntry:
    fields: Document = {
        "actor": "token:tok_123",
        "action": "event.create",
        "target": f"event-{number}",
        "outcome": "success",
        "before": None,
        "after": {"name": f"event {number}", "start_event": datetime(2024, 1, 1, tzinfo=UTC)},
        "client_address": "192.0.2.10",
        "request_id": f"req-{number}",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    fields.update(changes)
    return AuditEntry(**fields)


@pytest.fixture
def key() -> bytes:
    return secrets.token_bytes(32)


AUDIT_TEST_DATABASE = "audit_tests"
AUDIT_TEST_USER = "eventsvc-audit-test"


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    """This module's own database, migrated like the app's.

    The session's API servers write denial records and checkpoints into the
    shared database at any moment; a tampering test must see only the
    records it wrote, or a stray checkpoint becomes a second "problem".
    """
    return settings.model_copy(update={"mongodb_database": AUDIT_TEST_DATABASE})


@pytest.fixture(scope="module")
def store(mongod: RunningMongod, settings: Settings, audit_key: bytes) -> Iterator[EventStore]:
    """The app's event store on this module's database, as an app-role user of its own."""
    password = secrets.token_urlsafe(24)
    mongod.create_app_user_scram(AUDIT_TEST_USER, password, database=AUDIT_TEST_DATABASE)
    migrate(mongod, AUDIT_TEST_DATABASE)
    client = connect(settings, username=AUDIT_TEST_USER, password=SecretStr(password))
    audit_log = AuditLog(client[AUDIT_TEST_DATABASE], audit_key, CHECKPOINT_SIGNER)
    event_store = EventStore(client, AUDIT_TEST_DATABASE, audit_log)
    try:
        yield event_store
    finally:
        event_store.close()


@pytest.fixture
def app_db(store: EventStore, settings: Settings) -> Database[Document]:
    """The database as the app user (role eventsvcApp) sees it."""
    return store.client[settings.mongodb_database]


@pytest.fixture
def attacker(mongod: RunningMongod, settings: Settings) -> Iterator[Database[Document]]:
    """Root on the database, without the key."""
    with mongod.admin_client() as client:
        yield client[settings.mongodb_database]


@pytest.fixture
def audit(app_db: Database[Document], attacker: Database[Document], key: bytes) -> AuditLog:
    """A fresh writer on empty audit collections (emptied as root: the app cannot)."""
    attacker[AUDIT].delete_many({})
    attacker[AUDIT_CHECKPOINTS].delete_many({})
    return AuditLog(app_db, key, CHECKPOINT_SIGNER, checkpoint_every=1000)


def write(audit: AuditLog, count: int) -> list[AuditRecord]:
    return [audit.append(entry(number)) for number in range(count)]


def only_problem(database: Database[Document], key: bytes) -> tuple[str | None, int | None]:
    problem = the_problem(database, key)
    return problem.kind, problem.broken_sequence


def the_problem(database: Database[Document], key: bytes) -> ChainReport:
    """The one broken chain's report (its message names what is wrong)."""
    report = verify(database, key, CHECKPOINT_KEYS)
    assert not report.ok
    assert len(report.problems) == 1, [problem.describe() for problem in report.problems]
    return report.problems[0]


def renumber(records: Collection[Document], chain: str, sequences: list[int], delta: int) -> None:
    """Shift records' sequence numbers, in an order the unique index accepts."""
    for sequence in sorted(sequences, reverse=delta > 0):
        records.update_one({"chain": chain, "sequence": sequence}, {"$inc": {"sequence": delta}})


# --- writing and verifying ----------------------------------------------------------------


def test_records_chain_and_verify(audit: AuditLog, app_db: Database[Document], key: bytes) -> None:
    records = write(audit, 5)
    assert [record.sequence for record in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert len({record.chain for record in records}) == 1
    assert records[0].chain.startswith(f"{audit.writer_id}/")

    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert report.ok, [problem.describe() for problem in report.problems]
    assert report.records_checked == 5


def test_stored_record_holds_digests_not_states(
    audit: AuditLog, app_db: Database[Document]
) -> None:
    before = {"name": "secret-ish name", "attributes": {"k": "v"}}
    record = audit.append(entry(before=before, action="event.stop", detail="stopped"))
    stored = app_db[AUDIT].find_one({"chain": record.chain, "sequence": 1})
    assert stored is not None
    assert "secret-ish name" not in json.dumps(stored, default=str)
    assert stored["before_digest"] == record.before_digest
    assert len(str(record.before_digest)) == 64
    assert stored["actor"] == "token:tok_123"


def test_a_wrong_key_fails_every_chain(audit: AuditLog, app_db: Database[Document]) -> None:
    write(audit, 3)
    report = verify(app_db, secrets.token_bytes(32), CHECKPOINT_KEYS)
    assert not report.ok
    assert [problem.broken_sequence for problem in report.problems] == [1]


def test_two_writers_three_threads_each_verify(
    audit: AuditLog, app_db: Database[Document], key: bytes
) -> None:
    writers = [audit, AuditLog(app_db, key, CHECKPOINT_SIGNER, checkpoint_every=7)]
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def run(writer: AuditLog) -> None:
        try:
            barrier.wait()
            write(writer, 20)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for writer in writers:
        writer.checkpoint()

    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert report.ok, [problem.describe() for problem in report.problems]
    assert len(report.chains) == 6
    assert report.records_checked == 120
    assert report.checkpoints_checked >= 2
    assert {chain.chain.split("/")[0] for chain in report.chains} == {
        writer.writer_id for writer in writers
    }


def test_a_second_writer_on_the_same_chain_collides_then_continues(
    audit: AuditLog, app_db: Database[Document], key: bytes
) -> None:
    first = AuditLog(app_db, key, CHECKPOINT_SIGNER, writer_id="fixed")
    first.append(entry(1))
    same_id = AuditLog(app_db, key, CHECKPOINT_SIGNER, writer_id="fixed")
    with pytest.raises(DuplicateKeyError):
        same_id.append(entry(2))
    record = same_id.append(entry(3))
    assert record.sequence == 2
    assert verify(app_db, key, CHECKPOINT_KEYS).ok


# --- atomicity with the change ----------------------------------------------------------


def valid_event() -> Document:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "_id": ObjectId(),
        "name": "audited",
        "start_event": now,
        "stop_event": None,
        "attributes": {},
        "version": 1,
    }


def change_then_fail(
    store: EventStore,
    app_db: Database[Document],
    audit: AuditLog,
    event: Document,
    written: list[AuditRecord],
) -> None:
    """Insert an event and its audit record in one transaction, then fail before commit."""
    with store.client.start_session() as session, session.start_transaction():
        app_db["events"].insert_one(event, session=session)
        written.append(audit.append(entry(2, target=str(event["_id"])), session=session))
        raise InjectedFailure


def test_an_aborted_change_leaves_no_event_and_no_record(
    audit: AuditLog, store: EventStore, app_db: Database[Document], key: bytes
) -> None:
    first = audit.append(entry(1))
    event = valid_event()
    written: list[AuditRecord] = []
    with pytest.raises(InjectedFailure):
        change_then_fail(store, app_db, audit, event, written)
    doomed = written[0]
    assert doomed.sequence == 2

    assert app_db["events"].find_one({"_id": event["_id"]}) is None
    assert app_db[AUDIT].count_documents({"chain": first.chain}) == 1
    audit.checkpoint()  # must not sign the record that never committed

    following = audit.append(entry(3))
    assert following.sequence == 2
    assert following.prev_hash == first.hash
    assert following.hash != doomed.hash
    assert verify(app_db, key, CHECKPOINT_KEYS).ok


def test_a_committed_change_has_its_records(
    audit: AuditLog, store: EventStore, app_db: Database[Document], key: bytes
) -> None:
    audit.append(entry(1))
    event = valid_event()
    with store.client.start_session() as session:
        for number in (2, 4):  # one session, two transactions in a row
            with session.start_transaction():
                if number == 2:
                    app_db["events"].insert_one(event, session=session)
                first = audit.append(entry(number, target=str(event["_id"])), session=session)
                second = audit.append(entry(number + 1), session=session)
                assert second.prev_hash == first.hash
    assert app_db["events"].find_one({"_id": event["_id"]}) is not None
    audit.checkpoint()
    after = audit.append(entry(6))
    assert after.sequence == 6
    chain = list(app_db[AUDIT].find({"chain": after.chain}).sort("sequence", 1))
    assert [record["sequence"] for record in chain] == [1, 2, 3, 4, 5, 6]
    checkpoint = app_db[AUDIT_CHECKPOINTS].find_one({"writer_id": audit.writer_id})
    assert checkpoint is not None
    assert checkpoint["heads"][after.chain]["sequence"] == 5
    assert verify(app_db, key, CHECKPOINT_KEYS).ok


# --- least privilege ------------------------------------------------------------------------


def test_the_app_cannot_update_or_delete_audit_records(
    audit: AuditLog, app_db: Database[Document]
) -> None:
    record = audit.append(entry(1))
    audit.checkpoint()
    where = {"chain": record.chain, "sequence": 1}
    attempts: list[Callable[[], object]] = [
        lambda: app_db[AUDIT].update_one(where, {"$set": {"actor": "anonymous"}}),
        lambda: app_db[AUDIT].replace_one(where, record.document()),
        lambda: app_db[AUDIT].delete_one(where),
        lambda: app_db[AUDIT].delete_many({}),
        lambda: app_db[AUDIT].drop(),
        lambda: app_db[AUDIT_CHECKPOINTS].delete_many({}),
        lambda: app_db[AUDIT_CHECKPOINTS].update_many({}, {"$set": {"heads": {}}}),
    ]
    for attempt in attempts:
        with pytest.raises(OperationFailure) as raised:
            attempt()
        assert raised.value.code == UNAUTHORIZED
    assert app_db[AUDIT].count_documents(where) == 1


def test_the_validator_refuses_malformed_records(
    audit: AuditLog, app_db: Database[Document]
) -> None:
    record = audit.append(entry(1))
    malformed = {**record.document(), "sequence": 2, "hash": "not-a-hash"}
    with pytest.raises(OperationFailure) as raised:
        app_db[AUDIT].insert_one(malformed)
    assert raised.value.code == 121  # DocumentValidationFailure


# --- tampering ------------------------------------------------------------------------------


@pytest.fixture
def chain_of_ten(audit: AuditLog) -> list[AuditRecord]:
    return write(audit, 10)


def test_modified_record(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    chain = chain_of_ten[0].chain
    attacker[AUDIT].update_one({"chain": chain, "sequence": 4}, {"$set": {"outcome": "denied"}})
    assert only_problem(app_db, key) == ("modified", 4)


def test_modified_first_record(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """It links to the genesis hash, which no record has: still modified, not deleted."""
    chain = chain_of_ten[0].chain
    attacker[AUDIT].update_one({"chain": chain, "sequence": 1}, {"$set": {"outcome": "denied"}})
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence) == ("modified", 1)
    assert problem.message == "record 1 does not match its hash"


def test_modified_last_record_covered_by_a_checkpoint(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    audit.checkpoint()
    chain = chain_of_ten[0].chain
    attacker[AUDIT].update_one({"chain": chain, "sequence": 10}, {"$set": {"actor": "anonymous"}})
    assert only_problem(app_db, key) == ("modified", 10)


def test_deleted_record(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_one({"chain": chain, "sequence": 6})
    assert only_problem(app_db, key) == ("deleted", 6)


def test_a_deleted_record_is_named_alone(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """An odd sequence (5): ``5 | 1`` and ``5 ^ 1`` are not 6, so only ``5 + 1`` gives this."""
    attacker[AUDIT].delete_one({"chain": chain_of_ten[0].chain, "sequence": 5})
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence) == ("deleted", 5)
    assert problem.message == "record 5 missing; the chain goes on at 6"


def test_deleted_first_record(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_one({"chain": chain, "sequence": 1})
    assert only_problem(app_db, key) == ("deleted", 1)


def test_deleted_records_are_named_as_a_range(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_many({"chain": chain, "sequence": {"$in": [3, 4, 5]}})
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence) == ("deleted", 3)
    assert problem.message == "record 3 to 5 missing; the chain goes on at 6"


def test_deleted_records_with_the_gap_closed(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_many({"chain": chain, "sequence": {"$in": [5, 6]}})
    renumber(attacker[AUDIT], chain, [7, 8, 9, 10], -2)
    assert only_problem(app_db, key) == ("deleted", 5)


@pytest.mark.parametrize("forged_hash", ["0" * 63 + "1", "f" * 64])
def test_inserted_record_with_the_rest_renumbered(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
    forged_hash: str,
) -> None:
    """The forged hash sorts before or after what the next record links to: neither vouches."""
    chain = chain_of_ten[0].chain
    renumber(attacker[AUDIT], chain, list(range(5, 11)), +1)
    forged = {
        **chain_of_ten[4].document(),
        "prev_hash": chain_of_ten[3].hash,
        "actor": "token:someone_else",
        "hash": forged_hash,
    }
    attacker[AUDIT].insert_one(forged)
    assert only_problem(app_db, key) == ("inserted", 5)


def test_inserted_record_at_the_end(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    last = chain_of_ten[-1]
    forged = {**last.document(), "sequence": 11, "prev_hash": last.hash, "hash": "cd" * 32}
    attacker[AUDIT].insert_one(forged)
    assert only_problem(app_db, key) == ("inserted", 11)


def test_a_copied_hash_does_not_make_a_forgery_authentic(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    last = chain_of_ten[-1]
    replayed = {**chain_of_ten[2].document(), "sequence": 11, "prev_hash": last.hash}
    attacker[AUDIT].insert_one(replayed)
    kind, sequence = only_problem(app_db, key)
    assert sequence == 11
    assert kind in {"inserted", "reordered"}


def test_an_earlier_record_replayed_at_the_end_is_reordered(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """Record 3, unchanged but for its sequence, appended as 11: it was moved to a later place.

    (The swaps below put a later record first; this one an earlier record.)
    """
    replayed = {**chain_of_ten[2].document(), "sequence": 11}
    attacker[AUDIT].insert_one(replayed)
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence) == ("reordered", 11)
    assert problem.message == "record at sequence 11 was written as sequence 3"


@pytest.mark.parametrize(("first", "second"), [(3, 7), (5, 6)])
def test_reordered_records(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
    first: int,
    second: int,
) -> None:
    chain = chain_of_ten[0].chain
    records = attacker[AUDIT]
    records.update_one({"chain": chain, "sequence": first}, {"$set": {"sequence": 1000}})
    records.update_one({"chain": chain, "sequence": second}, {"$set": {"sequence": first}})
    records.update_one({"chain": chain, "sequence": 1000}, {"$set": {"sequence": second}})
    assert only_problem(app_db, key) == ("reordered", first)


def test_truncated_tail_detected_up_to_the_last_checkpoint(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    audit.checkpoint()
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_many({"chain": chain, "sequence": {"$gte": 8}})
    assert only_problem(app_db, key) == ("truncated", 8)


def test_the_highest_checkpointed_head_is_kept_in_any_order(
    audit: AuditLog, attacker: Database[Document], app_db: Database[Document], key: bytes
) -> None:
    """Checkpoints at sequences 3 and 6; records 5 and 6 cut: the later checkpoint sees it."""
    write(audit, 3)
    audit.checkpoint()
    chain = write(audit, 3)[0].chain
    audit.checkpoint()
    stored = [wire_form(c) for c in attacker[AUDIT_CHECKPOINTS].find({}, sort=[("number", 1)])]
    assert [c["heads"][chain]["sequence"] for c in stored] == [3, 6]
    for in_order in (stored, stored[::-1]):
        assert read_checkpoints(in_order, CHECKPOINT_KEYS).heads[chain].sequence == 6

    attacker[AUDIT].delete_many({"chain": chain, "sequence": {"$gte": 5}})
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence) == ("truncated", 5)
    assert problem.message == "the last checkpoint has record 6; the chain ends at 4"


def test_an_insider_with_the_key_rewriting_the_last_checkpointed_record(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """Whoever holds the HMAC key rewrites record 10 with a valid hash and link.

    Every record verifies on its own and links to the one before; only the
    checkpoint (signed with a key the insider lacks) still names the original.
    """
    audit.checkpoint()
    original = chain_of_ten[-1]
    previous = chain_of_ten[-2]
    rewritten = next_record(
        original.chain,
        ChainHead(previous.sequence, previous.hash),
        entry(10, actor="token:someone_else"),
        original.time,
        key,
    )
    assert (rewritten.sequence, rewritten.prev_hash) == (10, previous.hash)
    attacker[AUDIT].replace_one({"chain": original.chain, "sequence": 10}, rewritten.document())
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence) == ("truncated", 10)
    assert problem.message == (
        "record 10 is not the one checkpointed (chain cut back and rewritten)"
    )


def test_truncated_whole_chain(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    audit.checkpoint()
    attacker[AUDIT].delete_many({"chain": chain_of_ten[0].chain})
    problem = the_problem(app_db, key)
    assert (problem.kind, problem.broken_sequence, problem.records_checked) == ("truncated", 1, 0)
    assert problem.message == "checkpointed up to record 10, but no record is left"


def test_tail_after_the_last_checkpoint_is_not_protected(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """The documented limit: records written after the last checkpoint can vanish unnoticed."""
    audit.checkpoint()
    write(audit, 3)
    attacker[AUDIT].delete_many({"chain": chain_of_ten[0].chain, "sequence": {"$gt": 10}})
    assert verify(app_db, key, CHECKPOINT_KEYS).ok


def test_forged_checkpoint(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    chain = chain_of_ten[0].chain
    attacker[AUDIT_CHECKPOINTS].insert_one(
        {
            "format": 2,
            "writer_id": audit.writer_id,
            "number": 99,
            "prev_checkpoint": GENESIS_HASH,
            "reason": "manual",
            "heads": {chain: {"sequence": 50, "hash": "ef" * 32}},
            "time": datetime.now(UTC),
            "hash": "12" * 32,
            "signature": "vault:v1:" + "A" * 86 + "==",
        }
    )
    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert report.bad_checkpoints == 1
    assert only_problem(app_db, key) == ("bad-checkpoint", 50)


def test_a_checkpoint_naming_no_chain_still_fails_the_verdict(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """A forged checkpoint without heads (validator bypassed) breaks no chain, but the trail."""
    audit.checkpoint()
    forged = {**attacker[AUDIT_CHECKPOINTS].find_one({}, {"_id": False}), "number": 2}
    del forged["heads"]
    attacker[AUDIT_CHECKPOINTS].insert_one(forged, bypass_document_validation=True)
    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert (report.bad_checkpoints, report.problems, report.checkpoint_chain_problems) == (
        1,
        (),
        (),
    )
    assert all(chain.ok for chain in report.chains)
    assert not report.ok


def test_the_audit_hmac_key_alone_cannot_forge_a_checkpoint(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """An auditor (or whoever stole the audit key) cuts a chain and signs a checkpoint
    for the shorter chain, with the HMAC key and with an Ed25519 key of their own."""
    audit.checkpoint()
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_many({"chain": chain, "sequence": {"$gte": 6}})
    attacker[AUDIT_CHECKPOINTS].delete_many({})
    fields: Document = {
        "format": 2,
        "writer_id": audit.writer_id,
        "number": 1,
        "prev_checkpoint": GENESIS_HASH,
        "reason": "manual",
        "heads": {chain: {"sequence": 5, "hash": chain_of_ten[4].hash}},
        "time": rfc3339(datetime.now(UTC).replace(microsecond=0)),
    }
    message = checkpoint_message(fields)
    as_hmac = hmac.new(key, message, hashlib.sha256).digest()
    for signature in (
        "vault:v1:" + base64.b64encode(as_hmac).decode(),
        LocalCheckpointSigner.generate().sign(message).replace("ed25519:", "vault:"),
    ):
        attacker[AUDIT_CHECKPOINTS].delete_many({})
        attacker[AUDIT_CHECKPOINTS].insert_one(
            {
                **fields,
                "time": datetime.fromisoformat(fields["time"]),
                "hash": checkpoint_hash(fields),
                "signature": signature,
            }
        )
        report = verify(app_db, key, CHECKPOINT_KEYS)
        assert report.bad_checkpoints == 1
        assert [(p.chain, p.kind) for p in report.problems] == [(chain, "bad-checkpoint")]


def test_checkpoints_form_a_chain_per_writer(
    audit: AuditLog, attacker: Database[Document], app_db: Database[Document], key: bytes
) -> None:
    for _ in range(3):
        write(audit, 2)
        audit.checkpoint()
    stored = list(attacker[AUDIT_CHECKPOINTS].find({}, sort=[("number", 1)]))
    assert [c["number"] for c in stored] == [1, 2, 3]
    assert stored[0]["prev_checkpoint"] == GENESIS_HASH
    assert [c["prev_checkpoint"] for c in stored[1:]] == [c["hash"] for c in stored[:2]]
    assert verify(app_db, key, CHECKPOINT_KEYS).ok

    # Moved: the stored (time) order no longer follows the chain.
    in_file_order = [wire_form(c) for c in (stored[0], stored[2], stored[1])]
    moved = read_checkpoints(in_file_order, CHECKPOINT_KEYS)
    assert moved.chain_problems == [
        f"writer {audit.writer_id}: checkpoint 2 comes after checkpoint 3 (checkpoints moved)"
    ]

    # Removed from the middle: every checkpoint left is authentic, the chain is not.
    attacker[AUDIT_CHECKPOINTS].delete_one({"number": 2})
    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert report.bad_checkpoints == 0
    assert report.checkpoint_chain_problems == (
        f"writer {audit.writer_id}: checkpoint(s) 2 to 2 missing",
    )
    assert not report.ok

    # Removed from the start.
    attacker[AUDIT_CHECKPOINTS].delete_one({"number": 1})
    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert report.checkpoint_chain_problems == (
        f"writer {audit.writer_id}: checkpoints 1 to 2 missing",
    )


def test_altered_checkpoint(
    audit: AuditLog,
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    """Lowering a signed head (to hide a truncation) breaks the signature."""
    audit.checkpoint()
    chain = chain_of_ten[0].chain
    attacker[AUDIT].delete_many({"chain": chain, "sequence": {"$gte": 9}})
    attacker[AUDIT_CHECKPOINTS].update_one(
        {"writer_id": audit.writer_id},
        {"$set": {f"heads.{chain}": {"sequence": 8, "hash": chain_of_ten[7].hash}}},
    )
    assert only_problem(app_db, key) == ("bad-checkpoint", 8)


def test_tampering_in_one_chain_leaves_the_others_ok(
    audit: AuditLog, attacker: Database[Document], app_db: Database[Document], key: bytes
) -> None:
    other = threading.Thread(target=write, args=(audit, 4))
    other.start()
    other.join()
    mine = write(audit, 4)
    attacker[AUDIT].update_one(
        {"chain": mine[0].chain, "sequence": 2}, {"$set": {"target": "other"}}
    )
    report = verify(app_db, key, CHECKPOINT_KEYS)
    assert [(p.chain, p.kind, p.broken_sequence) for p in report.problems] == [
        (mine[0].chain, "modified", 2)
    ]
    assert len(report.chains) == 2


# --- export and throughput --------------------------------------------------------------------


def test_export_carries_its_proof(audit: AuditLog, app_db: Database[Document], key: bytes) -> None:
    records = write(audit, 4)
    audit.checkpoint()
    start = records[0].time - timedelta(seconds=1)
    lines = [json.loads(json.dumps(line)) for line in export(app_db, start, None)]

    exported = [line for line in lines if line["type"] == "record"]
    checkpoints = [line for line in lines if line["type"] == "checkpoint"]
    assert [line["sequence"] for line in exported] == [1, 2, 3, 4]
    assert all(record_hash(line, key) == line["hash"] for line in exported)
    assert exported[3]["prev_hash"] == exported[2]["hash"]
    assert len(checkpoints) == 1
    assert signature_ok(
        checkpoint_message(checkpoints[0]), checkpoints[0]["signature"], CHECKPOINT_KEYS
    )
    assert checkpoints[0]["hash"] == checkpoint_hash(checkpoints[0])
    assert checkpoints[0]["heads"][records[0].chain]["hash"] == records[-1].hash

    nothing = list(export(app_db, None, start))
    assert nothing == []


def test_throughput(mongod: RunningMongod) -> None:
    """Printed, not asserted: timing depends on the machine."""
    with mongod.admin_client() as client:
        client.drop_database("eventsvc_audit_bench")
        try:
            for threads in (1, 4):
                result = benchmark(client["eventsvc_audit_bench"], 400, threads=threads)
                print(result.describe())
                assert result.appends == 400
        finally:
            client.drop_database("eventsvc_audit_bench")


def test_garbage_bypassing_the_validator_is_reported_not_crashed_on(
    chain_of_ten: list[AuditRecord],
    attacker: Database[Document],
    app_db: Database[Document],
    key: bytes,
) -> None:
    attacker[AUDIT].insert_one(
        {"chain": chain_of_ten[0].chain, "sequence": 11, "time": "yesterday"},
        bypass_document_validation=True,
    )
    assert only_problem(app_db, key) == ("inserted", 11)


def test_with_the_checkpoint_thread_running_requests_never_sign(
    app_db: Database[Document],
    attacker: Database[Document],
    key: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The append that reaches ``checkpoint_every`` only wakes the thread, which signs.

    Signing goes through Vault in production: an unreachable Vault must delay
    a checkpoint, not the request that happened to reach the count
    (docs/reliability.md, the Vault fault).
    """
    attacker[AUDIT].delete_many({})
    attacker[AUDIT_CHECKPOINTS].delete_many({})
    audit = AuditLog(app_db, key, CHECKPOINT_SIGNER, checkpoint_every=3)
    caplog.set_level("INFO", logger="eventsvc.audit.log")
    start_checkpoints(audit, interval_seconds=3600)  # only the count can wake it here
    write(audit, 3)
    ours = {"writer_id": audit.writer_id}  # other writers of the session may checkpoint too
    signed = f"audit checkpoint 1 (count) of 1 chain(s) for writer {audit.writer_id}"

    def signed_by() -> set[str]:
        return {record.threadName for record in caplog.records if signed in record.getMessage()}

    # The thread stores the checkpoint, then logs it: wait for both, not just the first.
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while (
        attacker[AUDIT_CHECKPOINTS].count_documents(ours) == 0 or not signed_by()
    ) and datetime.now(UTC) < deadline:
        threading.Event().wait(0.05)
    stored = list(attacker[AUDIT_CHECKPOINTS].find(ours))
    assert [checkpoint["reason"] for checkpoint in stored] == ["count"]
    assert signed_by() == {"audit-checkpoints"}
