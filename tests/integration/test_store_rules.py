"""The store's fixed rules, each stated as a literal on both sides (mutation testing, issue #14).

The database's own guards (the ``$jsonSchema`` validator, the idempotency
TTL index) are read from, or tried against, the real mongod with the app's
own credential; the client options from the client :func:`connect` builds.
Anything these tests pin is a value a regression could change silently.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pydantic import SecretStr
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError

from devstack.mongod import RunningMongod
from eventsvc.audit.log import AuditLog
from eventsvc.domain import Event, EventNotFound
from eventsvc.settings import Settings
from eventsvc.store import (
    EVENTS,
    IDEMPOTENCY_KEYS,
    BatchItem,
    CreateResult,
    EventFilter,
    EventStore,
    InvalidCursor,
    NewEvent,
    Page,
    StoreUnavailable,
    _is_duplicate_key,
    _PlannedCreate,
    connect,
    decode_cursor,
    encode_cursor,
    unavailable_on_connection_errors,
)
from support import (
    APP_DATABASE,
    CHECKPOINT_SIGNER,
    TEST_CONTEXT,
    CommandLog,
    app_user_client,
    free_port,
    write_test_pki,
)

DOCUMENT_VALIDATION_FAILED = 121

# --- the database's guards ---------------------------------------------------


def test_idempotency_keys_expire_after_exactly_24_hours(
    mongod: RunningMongod, migrated: None
) -> None:
    with mongod.admin_client() as admin:
        indexes = {
            index["name"]: index for index in admin[APP_DATABASE][IDEMPOTENCY_KEYS].list_indexes()
        }
    ttl = indexes["created_at_ttl"]
    assert dict(ttl["key"]) == {"created_at": 1}
    assert ttl["expireAfterSeconds"] == 86400


def valid_event() -> dict[str, Any]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "_id": ObjectId(),
        "name": "n",
        "start_event": now,
        "stop_event": None,
        "attributes": {"k": "v"},
        "created_at": now,
        "updated_at": now,
        "created_by": None,
        "version": 1,
    }


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"name": ""}, "an empty name"),
        ({"name": "x" * 201}, "a name over 200 characters"),
        ({"version": 0}, "version 0"),
        ({"owner": "someone"}, "a property the schema does not name"),
        ({"attributes": {"bad key!": "v"}}, "an attribute key outside the pattern"),
        ({"attributes": {"k": 1}}, "an attribute value that is not a string"),
    ],
)
def test_the_validator_refuses_a_malformed_event_from_the_app_user(
    store: EventStore, clean_db: None, change: dict[str, Any], why: str
) -> None:
    """The app's own credential cannot store what the API would have refused."""
    events = store.database[EVENTS]
    with pytest.raises(WriteError) as refused:
        events.insert_one({**valid_event(), **change})
    assert refused.value.code == DOCUMENT_VALIDATION_FAILED, why


def test_the_validator_refuses_more_than_32_attributes(store: EventStore, clean_db: None) -> None:
    attributes = {f"k{index}": "v" for index in range(33)}
    with pytest.raises(WriteError) as refused:
        store.database[EVENTS].insert_one({**valid_event(), "attributes": attributes})
    assert refused.value.code == DOCUMENT_VALIDATION_FAILED


def test_the_validator_accepts_the_largest_valid_event(store: EventStore, clean_db: None) -> None:
    """The upper side of each bound: a 200-character name and 32 attributes."""
    attributes = {f"k{index}": "v" for index in range(32)}
    document = {**valid_event(), "name": "x" * 200, "attributes": attributes}
    store.database[EVENTS].insert_one(document)
    assert store.get(str(document["_id"])).attributes == attributes


def test_the_validator_accepts_the_smallest_valid_event(store: EventStore, clean_db: None) -> None:
    """The other side of each bound: a 1-character name, version 1, a pattern-conforming key."""
    document = {**valid_event(), "name": "a", "version": 1, "attributes": {"a-1_b": "v"}}
    store.database[EVENTS].insert_one(document)
    assert store.get(str(document["_id"])).name == "a"


def test_the_status_filter_compares_by_value(store: EventStore, clean_db: None) -> None:
    """A status parsed from a request is an equal string, not the literal object itself."""
    open_event = store.create(NewEvent("open one", None, {}), TEST_CONTEXT).event
    stopped = store.create(NewEvent("stopped one", None, {}), TEST_CONTEXT).event
    store.stop(stopped.id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    for status, expected in (("open", open_event.id), ("stopped", stopped.id)):
        parsed = "".join(list(status))
        assert parsed == status
        assert parsed is not status
        page = store.list(EventFilter(status=parsed), limit=10)  # type: ignore[arg-type]
        assert [event.id for event in page.events] == [expected]


# --- values and errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (NewEvent("n", None, {}), "name"),
        (EventFilter(), "name"),
        (Page([], None), "next_cursor"),
        (BatchItem(NewEvent("n", None, {})), "idempotency_key"),
        (_PlannedCreate(0, {}, "f", None, None), "document"),
        (CreateResult(Event("e", "n", datetime(2026, 1, 1, tzinfo=UTC), None), False), "replayed"),
    ],
)
def test_store_values_are_frozen(value: object, field: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, "changed")


@pytest.mark.parametrize("event_id", ["not-an-id", "z" * 24, 12345, 1.5])
def test_an_id_that_cannot_exist_is_not_found(
    store: EventStore, clean_db: None, event_id: Any
) -> None:
    """Not a crash: an invalid string and a non-string id both mean "no such event"."""
    with pytest.raises(EventNotFound):
        store.get(event_id)
    with pytest.raises(EventNotFound):
        store.stop(event_id, datetime.now(UTC), TEST_CONTEXT, if_match=None)
    with pytest.raises(EventNotFound):
        store.delete(event_id, TEST_CONTEXT)


# Every server error code that means "not now" (store.UNAVAILABLE_CODES), literally.
NOT_NOW_CODES = [6, 7, 89, 91, 189, 211, 262, 9001, 10107, 11600, 11602, 13435, 13436]
NEIGHBOURS = sorted(
    {near for code in NOT_NOW_CODES for near in (code - 1, code + 1)} - set(NOT_NOW_CODES)
)


def fail_with(code: int) -> None:
    raise OperationFailure(f"server error {code}", code=code)


@pytest.mark.parametrize("code", NOT_NOW_CODES)
def test_each_transient_server_error_is_unavailable(code: int) -> None:
    with pytest.raises(StoreUnavailable, match=f"code {code}"):
        unavailable_on_connection_errors(lambda: fail_with(code))


@pytest.mark.parametrize("code", NEIGHBOURS)
def test_a_neighbouring_server_error_is_not_unavailable(code: int) -> None:
    with pytest.raises(OperationFailure) as raised:
        unavailable_on_connection_errors(lambda: fail_with(code))
    assert not isinstance(raised.value, StoreUnavailable)
    assert raised.value.code == code


def bulk_error(*codes: int) -> BulkWriteError:
    return BulkWriteError(
        {"writeErrors": [{"index": n, "code": code} for n, code in enumerate(codes)]}
    )


def test_only_a_taken_unique_key_counts_as_a_duplicate() -> None:
    """A batch is decided again only when a unique key was taken, never for any other failure."""
    assert _is_duplicate_key(DuplicateKeyError("E11000", code=11000))
    assert _is_duplicate_key(bulk_error(11000))
    assert _is_duplicate_key(bulk_error(11000, 11000))
    for codes in [(), (121,), (10999,), (11001,), (11600,), (11000, 121), (121, 11000)]:
        assert not _is_duplicate_key(bulk_error(*codes)), codes


# --- cursors ---------------------------------------------------------------------


def cursor_of(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_position_is_unix_epoch_milliseconds() -> None:
    """The wire form every instance and version reads alike (a rolling deploy mixes them)."""
    event_id = "0123456789abcdef01234567"
    assert decode_cursor(cursor_of({"s": 0, "i": event_id})) == (
        datetime(1970, 1, 1, tzinfo=UTC),
        ObjectId(event_id),
    )
    cursor = encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), event_id)
    padded = cursor + "=" * (-len(cursor) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {"s": 1767225600000, "i": event_id}


@pytest.mark.parametrize("millis", [1, 12, 123, 1234, 1767225600000, 4102444799999])
def test_a_cursor_of_any_length_decodes(millis: int) -> None:
    """Unpadded lengths 51, 52, 54, 55 and 67: remainders 3, 0, 2 and 3 modulo 4."""
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    event_id = str(ObjectId())
    assert decode_cursor(encode_cursor(start, event_id)) == (start, ObjectId(event_id))


@pytest.mark.parametrize("millis", [1.5, True, "5", None])
def test_a_cursor_position_that_is_not_an_integer_is_refused(millis: object) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor_of({"s": millis, "i": str(ObjectId())}))


def test_a_cursor_with_an_extra_field_is_refused() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor_of({"s": 0, "i": str(ObjectId()), "x": 1}))


# --- pages -----------------------------------------------------------------------


@pytest.fixture
def listed_store(
    settings: Settings, app_password: SecretStr, audit_key: bytes, clean_db: None
) -> Iterator[tuple[EventStore, CommandLog]]:
    commands = CommandLog()
    client = app_user_client(settings, app_password, commands)
    try:
        yield (
            EventStore(
                client, APP_DATABASE, AuditLog(client[APP_DATABASE], audit_key, CHECKPOINT_SIGNER)
            ),
            commands,
        )
    finally:
        client.close()


def test_a_page_has_a_next_cursor_only_when_more_events_follow(
    listed_store: tuple[EventStore, CommandLog],
) -> None:
    store, commands = listed_store
    base = datetime(2026, 6, 1, tzinfo=UTC)
    created = [
        store.create(NewEvent(f"p{n}", base + timedelta(minutes=n), {}), TEST_CONTEXT).event.id
        for n in range(3)
    ]
    commands.clear()
    exactly = store.list(EventFilter(), 3)
    assert [event.id for event in exactly.events] == created[::-1]
    assert exactly.next_cursor is None
    first = store.list(EventFilter(), 2)
    assert [event.id for event in first.events] == created[:0:-1]
    assert first.next_cursor is not None
    rest = store.list(EventFilter(), 2, first.next_cursor)
    assert [event.id for event in rest.events] == created[:1]
    assert rest.next_cursor is None
    # A page reads one event more than it returns, never more.
    assert commands.find_limits(EVENTS) == [4, 3, 3]


# --- the client -------------------------------------------------------------------


def tls_settings(settings: Settings, ca_file: Path | None) -> Settings:
    return settings.model_copy(
        update={
            "mongodb_hosts": f"127.0.0.1:{free_port()}",
            "mongodb_replica_set": None,
            "mongodb_tls": True,
            "mongodb_tls_ca_file": ca_file,
        }
    )


def trusted_subjects(client: MongoClient[Any]) -> list[object]:
    context = client.options.pool_options._ssl_context  # the context every connection uses
    assert context is not None
    return [cert["subject"] for cert in context.get_ca_certs()]


def test_the_client_retries_reads_and_writes(settings: Settings) -> None:
    client = connect(settings)
    try:
        assert client.options.retry_writes is True
        assert client.options.retry_reads is True
    finally:
        client.close()


def test_the_client_waits_for_a_journaled_majority(settings: Settings) -> None:
    """What every write of a client from ``connect`` is acknowledged after (durability)."""
    client = connect(settings)
    try:
        assert client.write_concern.document == {"w": "majority", "j": True}
        assert client.read_concern.level == "majority"
    finally:
        client.close()


def test_the_client_trusts_the_configured_ca_file(settings: Settings, tmp_path: Path) -> None:
    ca_file, _, _ = write_test_pki(tmp_path / "pki")
    ca_subject = ((("commonName", "eventsvc test CA pki"),),)
    for client in (
        connect(tls_settings(settings, ca_file)),
        connect(tls_settings(settings, None), tls_ca_file=ca_file),
    ):
        try:
            assert trusted_subjects(client) == [ca_subject]
        finally:
            client.close()
    # Without a CA file the system's trust store is used: the client is still built.
    connect(tls_settings(settings, None)).close()
