"""The audit writer's rules, each stated on both sides of its bound (mutation testing, issue #14).

Against the session's real mongod, as its least-privilege app user (through a
second client whose commands are counted, see support.CommandLog), with the
real HMAC key and Ed25519 checkpoint signer. An unreachable Vault is a real
Vault client pointed at a loopback port nobody listens on. Every writer has a
writer_id of its own, so the session's other writers never get in the way.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import hvac
import pytest
from pydantic import SecretStr
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from devstack.mongod import RunningMongod
from eventsvc.audit.log import AuditLog, _ChainState, start_checkpoints
from eventsvc.audit.record import (
    AUDIT,
    AUDIT_CHECKPOINTS,
    GENESIS,
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
)
from eventsvc.audit.signing import CheckpointSigningFailed
from eventsvc.settings import Settings
from eventsvc.store import EventStore, run_in_transaction
from eventsvc.vault.anchors import VaultCheckpointAnchor
from eventsvc.vault.transit import TransitCheckpointSigner
from support import (
    APP_DATABASE,
    CHECKPOINT_SIGNER,
    TEST_CONTEXT,
    CommandLog,
    app_user_client,
    free_port,
)

Document = dict[str, Any]


TEST_ENTRY_FIELDS: Document = {
    "actor": "token:tok_rules",
    "action": "event.create",
    "target": "event-1",
    "outcome": "success",
    "before": None,
    "after": {"name": "one"},
    "client_address": "192.0.2.10",
    "request_id": "req-rules",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
}
TEST_ENTRY = AuditEntry(**TEST_ENTRY_FIELDS)


class Abort(Exception):
    """Raised inside a transaction to roll it back."""


@pytest.fixture
def listened(
    settings: Settings, app_password: SecretStr, store: EventStore
) -> Iterator[tuple[Database[Document], CommandLog]]:
    """The app database through a client of the app user whose commands are logged."""
    commands = CommandLog()
    client = app_user_client(settings, app_password, commands)
    try:
        yield client[APP_DATABASE], commands
    finally:
        client.close()


@pytest.fixture
def database(listened: tuple[Database[Document], CommandLog]) -> Database[Document]:
    return listened[0]


@pytest.fixture
def admin(mongod: RunningMongod) -> Iterator[Database[Document]]:
    """Root, to read what was really stored."""
    with mongod.admin_client() as client:
        yield client[APP_DATABASE]


def writer(database: Database[Document], key: bytes, **options: Any) -> AuditLog:
    options.setdefault("checkpoint_every", 10_000)
    return AuditLog(database, key, CHECKPOINT_SIGNER, **options)


def change(number: int) -> Document:
    return {"_id": f"doc-{number}", "name": f"document {number}"}


def append_one(database: Database[Document], audit: AuditLog, number: int) -> AuditRecord:
    """One change recorded in a committed transaction of its own."""

    def work(session: ClientSession) -> AuditRecord:
        return audit.append_change(
            TEST_CONTEXT, "event.create", None, change(number), session=session
        )

    return run_in_transaction(database.client, work)


def checkpoints(admin: Database[Document], audit: AuditLog) -> list[Document]:
    return list(admin[AUDIT_CHECKPOINTS].find({"writer_id": audit.writer_id}, sort=[("number", 1)]))


def unreachable_vault() -> hvac.Client:
    """A real Vault client; nothing listens on its port, so every request is refused."""
    return hvac.Client(url=f"http://127.0.0.1:{free_port()}", timeout=5)


# --- counting to a checkpoint ---------------------------------------------------------------


def test_checkpoint_every_must_be_at_least_one(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AuditLog(database, audit_key, CHECKPOINT_SIGNER, checkpoint_every=0)
    audit = AuditLog(database, audit_key, CHECKPOINT_SIGNER, checkpoint_every=1)
    first = audit.append(TEST_ENTRY)
    second = audit.append(TEST_ENTRY)
    assert [c["heads"][first.chain]["sequence"] for c in checkpoints(admin, audit)] == [
        first.sequence,
        second.sequence,
    ]


def test_a_checkpoint_is_made_at_every_nth_append_exactly(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    """With checkpoint_every=3: after the 3rd and the 6th record, never in between."""
    audit = writer(database, audit_key, checkpoint_every=3)
    made: list[int] = []
    for _ in range(7):
        audit.append(TEST_ENTRY)
        made.append(len(checkpoints(admin, audit)))
    assert made == [0, 0, 1, 1, 1, 2, 2]
    signed = [next(iter(c["heads"].values()))["sequence"] for c in checkpoints(admin, audit)]
    assert signed == [3, 6]
    assert [c["reason"] for c in checkpoints(admin, audit)] == ["count", "count"]


def test_a_batch_that_passes_the_count_still_makes_a_checkpoint(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    """2 records, then a batch of 2: the count (4) went past 3 without ever being 3."""
    audit = writer(database, audit_key, checkpoint_every=3)
    audit.append(TEST_ENTRY)
    second = audit.append(TEST_ENTRY)

    def two(session: ClientSession) -> list[AuditRecord]:
        changes = [(None, change(3)), (None, change(4))]
        return audit.append_changes(TEST_CONTEXT, "event.create", changes, session=session)

    run_in_transaction(database.client, two)
    # Made inside the batch's transaction: it signs the head committed before it.
    assert [c["heads"][second.chain]["sequence"] for c in checkpoints(admin, audit)] == [2]
    for _ in range(3):
        audit.append(TEST_ENTRY)
    assert [c["heads"][second.chain]["sequence"] for c in checkpoints(admin, audit)] == [2, 7]


def test_by_default_a_checkpoint_is_made_at_the_100th_record(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    audit = AuditLog(database, audit_key, CHECKPOINT_SIGNER)

    def ninety_nine(session: ClientSession) -> list[AuditRecord]:
        changes = [(None, change(number)) for number in range(99)]
        return audit.append_changes(TEST_CONTEXT, "event.create", changes, session=session)

    records = run_in_transaction(database.client, ninety_nine)
    audit.committed(records[-1])
    assert checkpoints(admin, audit) == []
    hundredth = audit.append(TEST_ENTRY)
    assert hundredth.sequence == 100
    stored = checkpoints(admin, audit)
    assert [(c["reason"], c["heads"][hundredth.chain]["sequence"]) for c in stored] == [
        ("count", 100)
    ]


# --- chains ---------------------------------------------------------------------------------


def test_chains_are_numbered_from_one_per_thread(
    database: Database[Document], audit_key: bytes
) -> None:
    audit = writer(database, audit_key)
    first = audit.append(TEST_ENTRY)
    in_thread: list[AuditRecord] = []
    thread = threading.Thread(target=lambda: in_thread.append(audit.append(TEST_ENTRY)))
    thread.start()
    thread.join()
    assert first.chain == f"{audit.writer_id}/1"
    assert in_thread[0].chain == f"{audit.writer_id}/2"


def test_a_chain_state_cannot_change_in_place() -> None:
    """A checkpoint copies the table of states under the lock and reads them after
    releasing it: that is safe only because a state is replaced, never changed."""
    state = _ChainState(GENESIS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.pending = GENESIS  # type: ignore[misc]


# --- append_changes -------------------------------------------------------------------------


def test_append_changes_writes_only_inside_a_transaction(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    audit = writer(database, audit_key)
    with database.client.start_session() as session:
        with pytest.raises(ValueError, match="in a transaction"):
            audit.append_changes(TEST_CONTEXT, "event.create", [(None, change(1))], session=session)
        with session.start_transaction(), pytest.raises(ValueError, match="in a transaction"):
            audit.append_changes(TEST_CONTEXT, "event.create", [], session=session)
    assert admin[AUDIT].count_documents({"chain": {"$regex": f"^{audit.writer_id}/"}}) == 0

    def two(session: ClientSession) -> list[AuditRecord]:
        changes = [(None, change(1)), (None, change(2))]
        return audit.append_changes(TEST_CONTEXT, "event.create", changes, session=session)

    records = run_in_transaction(database.client, two)
    assert [record.sequence for record in records] == [1, 2]
    assert admin[AUDIT].count_documents({"chain": records[0].chain}) == 2


def test_append_changes_targets_the_documents_id_whichever_side_it_is_on(
    database: Database[Document], audit_key: bytes
) -> None:
    """Created (no before), changed (both) and deleted (no after) documents."""
    audit = writer(database, audit_key)

    def three(session: ClientSession) -> list[AuditRecord]:
        changes = [(None, change(1)), (change(2), change(2)), (change(3), None)]
        return audit.append_changes(TEST_CONTEXT, "event.delete", changes, session=session)

    records = run_in_transaction(database.client, three)
    assert [record.target for record in records] == ["doc-1", "doc-2", "doc-3"]


# --- committed() ----------------------------------------------------------------------------


def test_committed_spares_the_next_append_a_read_of_the_chains_tip(
    listened: tuple[Database[Document], CommandLog], audit_key: bytes
) -> None:
    database, commands = listened
    audit = writer(database, audit_key)
    not_told = append_one(database, audit, 1)
    commands.commands.clear()
    audit.append(TEST_ENTRY)
    assert commands.on(AUDIT) == ["find", "insert"]  # pending: the tip is read back

    told = append_one(database, audit, 2)
    audit.committed(told)
    commands.commands.clear()
    after = audit.append(TEST_ENTRY)
    assert commands.on(AUDIT) == ["insert"]
    assert (after.sequence, after.prev_hash) == (told.sequence + 1, told.hash)
    assert not_told.sequence == 1


def test_committed_compares_chains_by_value(
    listened: tuple[Database[Document], CommandLog], audit_key: bytes
) -> None:
    """The same record rebuilt (its chain an equal string, not the same object) is promoted."""
    database, commands = listened
    audit = writer(database, audit_key)
    told = append_one(database, audit, 1)
    rebuilt = dataclasses.replace(told, chain="".join(list(told.chain)))
    assert rebuilt == told
    assert rebuilt.chain is not told.chain
    audit.committed(rebuilt)
    commands.commands.clear()
    audit.append(TEST_ENTRY)
    assert commands.on(AUDIT) == ["insert"]


def test_committed_with_an_older_record_leaves_an_aborted_one_pending(
    database: Database[Document], audit_key: bytes
) -> None:
    """A stale committed() must not promote the pending head of a rolled-back transaction."""
    audit = writer(database, audit_key)
    first = append_one(database, audit, 1)
    audit.committed(first)

    def append_then_abort(session: ClientSession) -> None:
        audit.append_change(TEST_CONTEXT, "event.create", None, change(2), session=session)
        raise Abort

    with pytest.raises(Abort):
        run_in_transaction(database.client, append_then_abort)
    audit.committed(first)  # again, late: the pending head is another record
    following = audit.append(TEST_ENTRY)
    assert (following.sequence, following.prev_hash) == (2, first.hash)


def test_a_tip_read_inside_a_transaction_is_not_trusted_after_it(
    database: Database[Document], audit_key: bytes
) -> None:
    """Inside a transaction the tip read back includes the transaction's own records;
    when the transaction then aborts (here: a state with no canonical form), the next
    append must not chain from one of them."""
    audit = writer(database, audit_key)
    first = append_one(database, audit, 1)  # committed, committed() not called: pending

    def append_then_fail(session: ClientSession) -> None:
        audit.append_change(TEST_CONTEXT, "event.create", None, change(2), session=session)
        unencodable = {"_id": "doc-3", "value": object()}
        audit.append_change(TEST_CONTEXT, "event.create", None, unencodable, session=session)

    with pytest.raises(TypeError, match="no canonical JSON form"):
        run_in_transaction(database.client, append_then_fail)
    following = audit.append(TEST_ENTRY)
    assert (following.sequence, following.prev_hash) == (2, first.hash)


# --- denials --------------------------------------------------------------------------------


def test_a_denial_keeps_exactly_200_characters_of_target_and_detail(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    audit = writer(database, audit_key)
    target = "t" * 199 + "TX"
    detail = "d" * 199 + "DX"
    record = audit.append_denied(TEST_CONTEXT, target, detail)
    stored = admin[AUDIT].find_one({"chain": record.chain, "sequence": record.sequence})
    assert stored is not None
    assert (stored["target"], stored["detail"]) == ("t" * 199 + "T", "d" * 199 + "D")
    exact = audit.append_denied(TEST_CONTEXT, "t" * 200, "d" * 200)
    assert (exact.target, exact.detail) == ("t" * 200, "d" * 200)
    assert (record.count, stored["count"]) == (1, 1)  # one refused request unless told more


# --- which heads a checkpoint signs ---------------------------------------------------------


def test_a_chain_of_one_record_is_signed(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    audit = writer(database, audit_key)
    record = audit.append(TEST_ENTRY)
    audit.checkpoint()
    assert [c["heads"] for c in checkpoints(admin, audit)] == [
        {record.chain: {"sequence": 1, "hash": record.hash}}
    ]


def test_a_chain_without_a_committed_record_is_not_signed(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    """Its only record was rolled back: there is nothing to sign, so no checkpoint at all."""
    audit = writer(database, audit_key)

    def append_then_abort(session: ClientSession) -> None:
        audit.append_change(TEST_CONTEXT, "event.create", None, change(1), session=session)
        raise Abort

    with pytest.raises(Abort):
        run_in_transaction(database.client, append_then_abort)
    audit.checkpoint()
    assert checkpoints(admin, audit) == []


# --- checkpoint failures --------------------------------------------------------------------


def test_a_taken_checkpoint_number_resumes_the_chain_from_the_stored_checkpoint(
    database: Database[Document], admin: Database[Document], audit_key: bytes
) -> None:
    """A writer whose checkpoint number is taken (a lost answer to an insert that
    succeeded, here a second instance of the writer) continues after the stored one."""
    writer_id = f"resume-{secrets.token_hex(4)}"
    first = writer(database, audit_key, writer_id=writer_id)
    first.append(TEST_ENTRY)
    first.checkpoint()
    again = writer(database, audit_key, writer_id=writer_id)
    with pytest.raises(DuplicateKeyError):
        again.append(TEST_ENTRY)  # its chain <writer_id>/1 is the first one's
    again.append(TEST_ENTRY)  # settled from the database: sequence 2
    with pytest.raises(DuplicateKeyError):
        again.checkpoint()  # number 1 is taken
    again.checkpoint()
    stored = checkpoints(admin, again)
    assert [(c["number"], c["prev_checkpoint"]) for c in stored] == [
        (1, GENESIS_HASH),
        (2, stored[0]["hash"]),
    ]
    assert next(iter(stored[1]["heads"].values()))["sequence"] == 2


def test_a_taken_checkpoint_number_at_the_count_does_not_fail_the_append(
    database: Database[Document],
    admin: Database[Document],
    audit_key: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database refuses the count's checkpoint (a PyMongoError): the record stays written."""
    writer_id = f"count-{secrets.token_hex(4)}"
    first = writer(database, audit_key, writer_id=writer_id)
    first.append(TEST_ENTRY)
    first.checkpoint()
    again = writer(database, audit_key, writer_id=writer_id, checkpoint_every=1)
    caplog.set_level(logging.WARNING, logger="eventsvc.audit.log")
    with pytest.raises(DuplicateKeyError):
        again.append(TEST_ENTRY)  # its chain <writer_id>/1 is the first one's
    record = again.append(TEST_ENTRY)  # its checkpoint's number 1 is taken too
    assert record.sequence == 2
    assert admin[AUDIT].count_documents({"chain": record.chain}) == 2
    [warning] = [r for r in caplog.records if "checkpoint failed" in r.getMessage()]
    assert warning.exc_info is not None
    assert isinstance(warning.exc_info[1], DuplicateKeyError)
    again.append(TEST_ENTRY)  # resumed: checkpoint 2 names the first one's
    assert [c["number"] for c in checkpoints(admin, again)] == [1, 2]


def test_a_checkpoint_vault_will_not_anchor_is_stored_and_the_chain_goes_on(
    database: Database[Document],
    admin: Database[Document],
    audit_key: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit = writer(database, audit_key, checkpoint_anchor=VaultCheckpointAnchor(unreachable_vault))
    caplog.set_level(logging.WARNING, logger="eventsvc.audit.log")
    audit.append(TEST_ENTRY)
    audit.checkpoint()  # not raised: stored in MongoDB, the next anchor covers it
    audit.append(TEST_ENTRY)
    audit.checkpoint()
    assert [c["number"] for c in checkpoints(admin, audit)] == [1, 2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["audit checkpoint 1 not anchored", "audit checkpoint 2 not anchored"]


def test_a_failed_count_checkpoint_keeps_the_record_and_logs_why(
    database: Database[Document],
    admin: Database[Document],
    audit_key: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Vault cannot sign: the append still returns its stored record, and the
    warning carries the cause (the signer's error, with its traceback)."""
    signer = TransitCheckpointSigner(unreachable_vault)
    audit = AuditLog(database, audit_key, signer, checkpoint_every=1)
    caplog.set_level(logging.WARNING, logger="eventsvc.audit.log")
    record = audit.append(TEST_ENTRY)
    assert admin[AUDIT].count_documents({"chain": record.chain}) == 1
    assert checkpoints(admin, audit) == []
    [warning] = [r for r in caplog.records if r.name == "eventsvc.audit.log"]
    assert warning.getMessage() == "audit checkpoint failed; retrying after more records"
    assert warning.exc_info is not None
    assert isinstance(warning.exc_info[1], CheckpointSigningFailed)
    assert "vault refused to sign at transit/sign/" in caplog.text


def test_the_checkpoint_thread_outlives_a_failed_checkpoint(
    database: Database[Document], audit_key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Vault cannot sign: each failure is logged and the thread is still there for the next."""
    signer = TransitCheckpointSigner(unreachable_vault)
    audit = AuditLog(database, audit_key, signer, checkpoint_every=1)
    caplog.set_level(logging.ERROR, logger="eventsvc.audit.log")
    thread = start_checkpoints(audit, interval_seconds=3600)  # only the count wakes it here

    def failures() -> int:
        return sum("audit checkpoint failed; retrying in" in r.getMessage() for r in caplog.records)

    for expected in (1, 2):
        audit.append(TEST_ENTRY)
        deadline = time.monotonic() + 30
        while failures() < expected and time.monotonic() < deadline:
            threading.Event().wait(0.05)
        assert failures() == expected
    assert thread.is_alive()
