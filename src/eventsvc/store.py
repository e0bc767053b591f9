"""How eventsvc keeps events in MongoDB: the client, schema, indexes, queries, transactions.

This module builds the MongoClient and owns the events and idempotency-key
collections. Tokens, audit records and rate-limit counters are kept by
:mod:`eventsvc.tokens`, :mod:`eventsvc.audit` and :mod:`eventsvc.ratelimit`,
which import pymongo too, as do the schema, metrics, tracing and server
plumbing and the dev stack. Routes do not: :mod:`eventsvc.api.problems` only
maps ``PyMongoError`` to a 503.

The store never sees HTTP: callers pass validated Python values
(``datetime``, ``str``, ``dict[str, str]``) and get
:class:`~eventsvc.domain.Event` objects back. Query documents are built here
from those typed values only, so a request can never smuggle an operator
(``$where``, ``$regex``...) into a filter.

Writes use ``w: majority`` with journaling and retryable writes; reads use
majority read concern. Every operation has a deadline (``timeoutMS``), and
all the operations of one HTTP request share one more
(:func:`request_deadline`), so a dead database, or a replica set without a
primary, surfaces as :class:`StoreUnavailable` (HTTP 503) within seconds;
docs/reliability.md lists the settings and what each failure costs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pydantic import SecretStr
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
)
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AuditRecord
from eventsvc.clock import truncate_to_ms, utc_now
from eventsvc.domain import (
    MAX_BATCH_EVENTS,
    Event,
    EventNotFound,
    IdempotencyKeyReused,
    IdempotentResultGone,
    RequestContext,
    check_stop,
)
from eventsvc.metrics import MongoPoolMetrics
from eventsvc.schema import CollectionSchema
from eventsvc.settings import Settings

log = logging.getLogger(__name__)

Document = dict[str, Any]
EventStatus = Literal["open", "stopped"]
T = TypeVar("T")

EVENTS = "events"
IDEMPOTENCY_KEYS = "idempotency_keys"
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600
START_EVENT_INDEX = "start_event_desc_id_desc"
# The list order, and the key of the index that serves it: one definition for both.
NEWEST_FIRST = [("start_event", DESCENDING), ("_id", DESCENDING)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The database refuses documents that do not look like events, even if a bug
# (or a compromised instance) bypasses our validation.
EVENTS_VALIDATOR: Document = {
    "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "name", "start_event", "stop_event", "attributes", "version"],
        "additionalProperties": False,
        "properties": {
            "_id": {"bsonType": "objectId"},
            "name": {"bsonType": "string", "minLength": 1, "maxLength": 200},
            "start_event": {"bsonType": "date"},
            "stop_event": {"bsonType": ["date", "null"]},
            "attributes": {
                "bsonType": "object",
                "maxProperties": 32,
                "patternProperties": {"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$": {"bsonType": "string"}},
                "additionalProperties": False,
            },
            "created_at": {"bsonType": "date"},
            "updated_at": {"bsonType": "date"},
            "created_by": {"bsonType": ["string", "null"]},
            "version": {"bsonType": "int", "minimum": 1},
        },
    }
}

EVENTS_INDEXES = [
    # The requirements' index on start_event. The _id suffix makes the sort
    # total, so keyset pagination never skips or repeats an event.
    IndexModel(NEWEST_FIRST, name=START_EVENT_INDEX),
    # The same order within one name, for `?name=` lists.
    IndexModel(
        [("name", ASCENDING), ("start_event", DESCENDING), ("_id", DESCENDING)],
        name="name_start_event_desc_id_desc",
    ),
]

IDEMPOTENCY_INDEXES = [
    IndexModel(
        [("created_at", ASCENDING)],
        name="created_at_ttl",
        expireAfterSeconds=IDEMPOTENCY_KEY_TTL_SECONDS,
    ),
]

STORE_SCHEMAS = (
    CollectionSchema(EVENTS, EVENTS_VALIDATOR, tuple(EVENTS_INDEXES)),
    CollectionSchema(IDEMPOTENCY_KEYS, None, tuple(IDEMPOTENCY_INDEXES)),
)
"""What :mod:`eventsvc.dbschema` creates (migration) and checks (app start)."""


class StoreUnavailable(Exception):
    """MongoDB could not be reached or did not answer in time."""


class InvalidCursor(ValueError):
    """A pagination cursor that this service did not produce."""


@dataclass(frozen=True)
class NewEvent:
    """A validated request to create an event."""

    name: str
    start_event: datetime | None  # None: "now", decided when stored
    attributes: dict[str, str]


@dataclass(frozen=True)
class EventFilter:
    """What a list request asks for; all fields already validated."""

    start_from: datetime | None = None
    start_to: datetime | None = None
    name: str | None = None
    status: EventStatus | None = None


@dataclass(frozen=True)
class Page:
    """One page of a list, newest first, and the cursor for the next one."""

    events: list[Event]
    next_cursor: str | None


@dataclass(frozen=True)
class BatchItem:
    """One event of a batch create, with its own optional Idempotency-Key."""

    new_event: NewEvent
    idempotency_key: str | None = None


@dataclass(frozen=True)
class _PlannedCreate:
    """What one batch item would write, decided before the transaction."""

    index: int
    document: Document
    fingerprint: str
    key_id: str | None
    key: str | None


@dataclass(frozen=True)
class CreateResult:
    """The created event, and whether it is a replay of an earlier request."""

    event: Event
    replayed: bool


# Server errors that say "not now" rather than "not this": no primary (stepped down,
# not writable, shutting down, interrupted by a state change), unreachable hosts, and
# KeyNotFound (211), which a client meets after every member restarted and lost the
# keys that signed the cluster time it still carries. A retry later succeeds.
UNAVAILABLE_CODES = frozenset(
    {6, 7, 89, 91, 189, 211, 262, 9001, 10107, 11600, 11602, 13435, 13436}
)
UNAVAILABLE_LABELS = ("RetryableWriteError", "TransientTransactionError")


def unavailable_on_connection_errors(operation: Callable[[], T]) -> T:
    """Run ``operation``; turn "database down, slow or without a primary" into StoreUnavailable."""
    try:
        return operation()
    except ConnectionFailure as error:  # includes timeouts and server selection
        raise StoreUnavailable("MongoDB is unavailable") from error
    except OperationFailure as error:
        if error.timeout:
            raise StoreUnavailable("MongoDB did not answer in time") from error
        if means_unavailable(error):
            raise StoreUnavailable(f"MongoDB is unavailable (code {error.code})") from error
        raise


def means_unavailable(error: OperationFailure) -> bool:
    """True for a server error that a later retry may not meet (see UNAVAILABLE_CODES)."""
    return error.code in UNAVAILABLE_CODES or any(
        error.has_error_label(label) for label in UNAVAILABLE_LABELS
    )


@contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Every MongoDB operation inside shares one deadline (pymongo's client-side timeout).

    Without it each operation of a request (token lookup, rate-limit counter,
    the transaction) waits up to ``timeoutMS`` on its
    own, and a transaction may retry transient errors for up to 120 s: a
    request without a primary could take many times ``timeoutMS``. Inside,
    the remaining time bounds every operation, server selection and every
    transaction retry (it replaces the client's ``timeoutMS``).
    """
    with pymongo.timeout(seconds):
        yield


def encode_cursor(start_event: datetime, event_id: str) -> str:
    """An opaque, URL-safe position: the last item of the page."""
    millis = (start_event - _EPOCH) // timedelta(milliseconds=1)  # exact, unlike float seconds
    position = {"s": millis, "i": event_id}
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, ObjectId]:
    """Parse a cursor strictly: anything we did not produce is InvalidCursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        millis = position["s"]
        event_id = ObjectId(position["i"])
        if not isinstance(millis, int) or isinstance(millis, bool) or set(position) != {"s", "i"}:
            raise InvalidCursor("malformed cursor")
        start_event = _EPOCH + timedelta(milliseconds=millis)
    except (ValueError, KeyError, TypeError, InvalidId, binascii.Error, OverflowError) as error:
        raise InvalidCursor("malformed cursor") from error
    return start_event, event_id


def _utc(moment: datetime) -> datetime:
    """BSON dates come back naive; they are UTC."""
    return moment.replace(tzinfo=UTC)


def _to_event(document: Document) -> Event:
    """Map a stored document (shape guaranteed by the $jsonSchema validator) to an Event."""
    start_event = _utc(document["start_event"])
    stop_event = document["stop_event"]
    return Event(
        id=str(document["_id"]),
        name=document["name"],
        start_event=start_event,
        stop_event=None if stop_event is None else _utc(stop_event),
        attributes=dict(document["attributes"]),
        created_at=_utc(document.get("created_at", start_event)),
        updated_at=_utc(document.get("updated_at", start_event)),
        version=document["version"],
    )


def _audit_state(document: Document | None) -> Document | None:
    """The state the audit trail hashes: the stored document, id as a string."""
    if document is None:
        return None
    return {**document, "_id": str(document["_id"])}


def _parse_id(event_id: str) -> ObjectId:
    """An id that is not a valid ObjectId cannot exist: EventNotFound."""
    try:
        return ObjectId(event_id)
    except (InvalidId, TypeError) as error:
        raise EventNotFound(f"event {event_id} does not exist") from error


def _idempotency_id(context: RequestContext, idempotency_key: str) -> str:
    """The stored identity of an Idempotency-Key: the caller and the key, never the key alone.

    A key alone is global: anyone who learns (or guesses) another client's
    key could replay its request and read its event. The key's pattern has
    no ``|``, so the part after the last ``|`` is the key and the pair is
    unambiguous; the unique ``_id`` index does the rest.
    """
    return f"{context.actor}|{idempotency_key}"


def _plan_create(
    index: int, item: BatchItem, context: RequestContext, now: datetime
) -> _PlannedCreate:
    key = item.idempotency_key
    return _PlannedCreate(
        index=index,
        document=_new_document(item.new_event, now),
        fingerprint=_request_fingerprint(item.new_event),
        key_id=None if key is None else _idempotency_id(context, key),
        key=key,
    )


def _new_document(new_event: NewEvent, now: datetime) -> Document:
    """The stored form of a new event (version 1, not stopped)."""
    return {
        "_id": ObjectId(),
        "name": new_event.name,
        "start_event": truncate_to_ms(new_event.start_event or now),
        "stop_event": None,
        "attributes": new_event.attributes,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _idempotency_record(item: _PlannedCreate, context: RequestContext) -> Document:
    return {
        "_id": item.key_id,
        "caller": context.actor,
        "key": item.key,
        "request": item.fingerprint,
        "event_id": item.document["_id"],
        "created_at": item.document["created_at"],
    }


def _check_same_request(item: _PlannedCreate, fingerprint: str) -> None:
    if item.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"events[{item.index}]: this Idempotency-Key was already used with a different event"
        )


def _replayed_event_id(item: _PlannedCreate, record: Document) -> ObjectId:
    _check_same_request(item, record["request"])
    event_id: ObjectId = record["event_id"]
    return event_id


def _is_duplicate_key(error: DuplicateKeyError | BulkWriteError) -> bool:
    """Whether a write failed only because a unique key (an Idempotency-Key) was taken."""
    if isinstance(error, DuplicateKeyError):
        return True
    errors = error.details.get("writeErrors", [])
    return bool(errors) and all(item.get("code") == 11000 for item in errors)


def _request_fingerprint(new_event: NewEvent) -> str:
    """Digest of a create request, to tell a retry from a different request."""
    canonical = json.dumps(
        {
            "name": new_event.name,
            "start_event": None
            if new_event.start_event is None
            else new_event.start_event.isoformat(),
            "attributes": new_event.attributes,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def connect(
    settings: Settings,
    *,
    username: str | None = None,
    password: SecretStr | None = None,
    tls_cert_key_file: Path | None = None,
    tls_ca_file: Path | None = None,
) -> MongoClient[Document]:
    """A client for ``settings`` with one credential: SCRAM, or an X.509 certificate.

    TLS verifies the server against ``tls_ca_file`` if given, else
    ``mongodb_tls_ca_file`` (else the system's trust store); there is no
    switch to skip verification. Every timeout is bounded so a dead database
    fails fast instead of hanging a request.
    """
    options: dict[str, Any] = {
        "host": [host.strip() for host in settings.mongodb_hosts.split(",")],
        "replicaset": settings.mongodb_replica_set,
        "w": "majority",
        "journal": True,
        "retryWrites": True,
        "retryReads": True,
        "readConcernLevel": "majority",
        "serverSelectionTimeoutMS": settings.mongodb_timeout_ms,
        "connectTimeoutMS": settings.mongodb_timeout_ms,
        "timeoutMS": settings.mongodb_timeout_ms,
        "maxPoolSize": settings.mongodb_max_pool_size,
        "appname": "eventsvc",
        "event_listeners": [MongoPoolMetrics()],
        "tz_aware": False,
    }
    if settings.mongodb_tls:
        options["tls"] = True
        ca_file = tls_ca_file or settings.mongodb_tls_ca_file
        if ca_file is not None:
            options["tlsCAFile"] = str(ca_file)
    if tls_cert_key_file is not None:
        options["tlsCertificateKeyFile"] = str(tls_cert_key_file)
        options["authMechanism"] = "MONGODB-X509"
        options["authSource"] = "$external"
    elif username is not None and password is not None:
        options["username"] = username
        options["password"] = password.get_secret_value()
        options["authMechanism"] = "SCRAM-SHA-256"
        options["authSource"] = settings.mongodb_database
    return MongoClient(**options)


def run_in_transaction(client: MongoClient[Document], work: Callable[[ClientSession], T]) -> T:
    """Run ``work`` in a majority-committed transaction, retried on transient errors.

    ``with_transaction`` re-runs ``work`` after a write conflict, so a
    concurrent change is re-read and re-checked, never overwritten. Database
    outages surface as StoreUnavailable.
    """

    def run() -> T:
        with client.start_session() as session:
            return session.with_transaction(
                work,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern(w="majority", j=True),
            )

    return unavailable_on_connection_errors(run)


class EventStore:
    """Events in MongoDB.

    A store keeps its client for life: a new credential from Vault means new
    gunicorn workers with new stores (graceful reload, see server.py), while
    the old workers finish their requests on the old one.
    """

    def __init__(self, client: MongoClient[Document], database: str, audit: AuditLog) -> None:
        self._client = client
        self._database = database
        self._audit = audit
        self._local = threading.local()  # the last audit record of this thread's transaction

    # --- lifecycle ------------------------------------------------------
    @property
    def client(self) -> MongoClient[Document]:
        return self._client

    @property
    def audit(self) -> AuditLog:
        """The audit writer this store's changes are recorded with."""
        return self._audit

    @property
    def database(self) -> Database[Document]:
        """The app database on the current client (for stores sharing the client)."""
        return self._client[self._database]

    def close(self) -> None:
        self._client.close()

    def _collection(self, name: str) -> Collection[Document]:
        return self._client[self._database].get_collection(
            name,
            write_concern=WriteConcern(w="majority", j=True),
            read_concern=ReadConcern("majority"),
        )

    def ping(self) -> None:
        """Raise StoreUnavailable unless MongoDB answers."""
        unavailable_on_connection_errors(lambda: self._client.admin.command("ping"))

    # --- commands -------------------------------------------------------
    # Each change and its audit record commit in one transaction: no event
    # without its record, no record of a change that did not happen.

    def _in_transaction(self, work: Callable[[ClientSession], T]) -> T:
        """Run ``work`` in a transaction; then its last audit record is known durable.

        Telling the audit writer (:meth:`AuditLog.committed`) spares the next
        change of this thread a read of its chain's tip.
        """
        self._local.last_record = None
        result = run_in_transaction(self._client, work)
        last_record: AuditRecord | None = self._local.last_record
        if last_record is not None:
            self._audit.committed(last_record)
        return result

    def create(
        self,
        new_event: NewEvent,
        context: RequestContext,
        idempotency_key: str | None = None,
    ) -> CreateResult:
        """Insert an event; with an idempotency key, a retry returns the first result.

        The event, its idempotency record and its audit record commit
        together, so a key never points at an event that does not exist.
        A key belongs to the caller that used it (``context.actor``): another
        caller sending the same key gets its own new event, never ours.
        """
        now = truncate_to_ms(utc_now())
        document = _new_document(new_event, now)
        fingerprint = _request_fingerprint(new_event)

        key_id = None if idempotency_key is None else _idempotency_id(context, idempotency_key)

        def work(session: ClientSession) -> None:
            if key_id is not None:
                self._collection(IDEMPOTENCY_KEYS).insert_one(
                    {
                        "_id": key_id,
                        "caller": context.actor,
                        "key": idempotency_key,
                        "request": fingerprint,
                        "event_id": document["_id"],
                        "created_at": now,
                    },
                    session=session,
                )
            self._collection(EVENTS).insert_one(document, session=session)
            self._audit_change(session, context, "event.create", None, document)

        try:
            self._in_transaction(work)
        except DuplicateKeyError:
            if key_id is None:
                raise
            return self._replay(key_id, fingerprint)
        return CreateResult(_to_event(document), replayed=False)

    def create_many(
        self, items: Sequence[BatchItem], context: RequestContext
    ) -> list[CreateResult]:
        """Create events in one transaction, one audit record each; results in item order.

        All or nothing: the new events, their idempotency records and their
        audit records commit together, or nothing is written. An item whose
        Idempotency-Key this caller already used (earlier, or earlier in this
        batch) replays the first result and writes nothing; the same key with
        a different event refuses the whole batch (IdempotencyKeyReused), as
        does a replay whose event was deleted (IdempotentResultGone). The
        round trips do not grow with the batch: one read of the used keys,
        one of the replayed events (only when there are any), one insert
        each for keys, events and audit records, then the commit.
        """
        if not 1 <= len(items) <= MAX_BATCH_EVENTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events")
        now = truncate_to_ms(utc_now())
        planned = [_plan_create(index, item, context, now) for index, item in enumerate(items)]
        try:
            return self._in_transaction(
                lambda session: self._create_planned(planned, context, session)
            )
        except (DuplicateKeyError, BulkWriteError) as error:
            if not _is_duplicate_key(error):
                raise
        # Another request took one of these keys meanwhile; decided again, it replays.
        try:
            return self._in_transaction(
                lambda session: self._create_planned(planned, context, session)
            )
        except (DuplicateKeyError, BulkWriteError) as error:
            if not _is_duplicate_key(error):
                raise
            raise IdempotencyKeyReused(
                "a request with one of these Idempotency-Keys is in progress"
            ) from None

    def _create_planned(
        self, planned: list[_PlannedCreate], context: RequestContext, session: ClientSession
    ) -> list[CreateResult]:
        """The transaction of :meth:`create_many`: decide each item, then write the new ones."""
        used = self._used_keys([item.key_id for item in planned if item.key_id], session)
        first_by_key: dict[str, _PlannedCreate] = {}
        replayed_ids: dict[int, ObjectId] = {}
        new: list[_PlannedCreate] = []
        for item in planned:
            if item.key_id is None:
                new.append(item)
            elif item.key_id in used:
                replayed_ids[item.index] = _replayed_event_id(item, used[item.key_id])
            elif item.key_id in first_by_key:
                first = first_by_key[item.key_id]
                _check_same_request(item, first.fingerprint)
                replayed_ids[item.index] = first.document["_id"]
            else:
                first_by_key[item.key_id] = item
                new.append(item)
        replayed = self._replayed_events(
            replayed_ids, {item.document["_id"] for item in new}, session
        )
        self._insert_new(new, context, session)
        created = {item.document["_id"]: item.document for item in new}
        results: list[CreateResult] = []
        for item in planned:
            if item.index not in replayed_ids:
                results.append(CreateResult(_to_event(item.document), replayed=False))
            elif item.index in replayed:
                results.append(CreateResult(replayed[item.index], replayed=True))
            else:  # the same key earlier in this batch: that item's new event
                earlier = created[replayed_ids[item.index]]
                results.append(CreateResult(_to_event(earlier), replayed=True))
        return results

    def _used_keys(self, key_ids: list[str], session: ClientSession) -> dict[str, Document]:
        if not key_ids:
            return {}
        found = self._collection(IDEMPOTENCY_KEYS).find({"_id": {"$in": key_ids}}, session=session)
        return {record["_id"]: record for record in found}

    def _replayed_events(
        self, replayed_ids: dict[int, ObjectId], created_now: set[ObjectId], session: ClientSession
    ) -> dict[int, Event]:
        """The first results to replay, by item index; one read for all of them."""
        wanted = set(replayed_ids.values()) - created_now
        stored: dict[ObjectId, Document] = {}
        if wanted:
            found = self._collection(EVENTS).find({"_id": {"$in": list(wanted)}}, session=session)
            stored = {document["_id"]: document for document in found}
        replayed: dict[int, Event] = {}
        for index, event_id in replayed_ids.items():
            if event_id in created_now:
                continue  # an earlier item of this batch: filled in from its document
            if event_id not in stored:
                raise IdempotentResultGone(
                    f"events[{index}]: the event first created with this Idempotency-Key "
                    "has since been deleted"
                )
            replayed[index] = _to_event(stored[event_id])
        return replayed

    def _insert_new(
        self, new: list[_PlannedCreate], context: RequestContext, session: ClientSession
    ) -> None:
        if not new:
            return
        keys = [_idempotency_record(item, context) for item in new if item.key_id is not None]
        if keys:
            self._collection(IDEMPOTENCY_KEYS).insert_many(keys, session=session)
        documents = [item.document for item in new]
        self._collection(EVENTS).insert_many(documents, session=session)
        records = self._audit.append_changes(
            context,
            "event.create",
            [(None, _audit_state(document)) for document in documents],
            session=session,
        )
        self._local.last_record = records[-1]

    def _replay(self, key_id: str, fingerprint: str) -> CreateResult:
        record = unavailable_on_connection_errors(
            lambda: self._collection(IDEMPOTENCY_KEYS).find_one({"_id": key_id})
        )
        if record is None:
            # The winner's transaction aborted after all: nothing to replay.
            raise IdempotencyKeyReused("a request with this Idempotency-Key is in progress")
        if record["request"] != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request"
            )
        try:
            return CreateResult(self.get(str(record["event_id"])), replayed=True)
        except EventNotFound:
            # Creating it again would resurrect what someone deleted on purpose.
            raise IdempotentResultGone(
                "the event first created with this Idempotency-Key has since been deleted"
            ) from None

    def get(self, event_id: str) -> Event:
        object_id = _parse_id(event_id)
        document = unavailable_on_connection_errors(
            lambda: self._collection(EVENTS).find_one({"_id": object_id})
        )
        if document is None:
            raise EventNotFound(f"event {event_id} does not exist")
        return _to_event(document)

    def stop(
        self,
        event_id: str,
        stop_event: datetime,
        context: RequestContext,
        *,
        if_match: str | None,
    ) -> Event:
        """Set ``stop_event`` under the domain rules, without lost updates.

        The rules are checked against the version read in the same snapshot
        transaction that writes the stop; a concurrent change makes the
        transaction conflict and retry, so it is decided again, not overwritten.
        """
        object_id = _parse_id(event_id)
        stop_at = truncate_to_ms(stop_event)

        def work(session: ClientSession) -> Event:
            before = self._collection(EVENTS).find_one({"_id": object_id}, session=session)
            if before is None:
                raise EventNotFound(f"event {event_id} does not exist")
            check_stop(_to_event(before), stop_at, if_match=if_match)
            updated_at = truncate_to_ms(utc_now())
            after = self._collection(EVENTS).find_one_and_update(
                {"_id": object_id, "version": before["version"]},
                {"$set": {"stop_event": stop_at, "updated_at": updated_at}, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if after is None:  # cannot happen inside the snapshot; refuse rather than guess
                raise StoreUnavailable("event changed concurrently; retry")
            self._audit_change(session, context, "event.stop", before, after)
            return _to_event(after)

        return self._in_transaction(work)

    def delete(self, event_id: str, context: RequestContext) -> None:
        object_id = _parse_id(event_id)

        def work(session: ClientSession) -> None:
            before = self._collection(EVENTS).find_one_and_delete(
                {"_id": object_id}, session=session
            )
            if before is None:
                raise EventNotFound(f"event {event_id} does not exist")
            self._audit_change(session, context, "event.delete", before, None)

        self._in_transaction(work)

    def _audit_change(
        self,
        session: ClientSession,
        context: RequestContext,
        action: str,
        before: Document | None,
        after: Document | None,
    ) -> None:
        """Append the change's audit record inside its transaction (ids as strings)."""
        self._local.last_record = self._audit.append_change(
            context, action, _audit_state(before), _audit_state(after), session=session
        )

    # --- queries --------------------------------------------------------
    def list(self, event_filter: EventFilter, limit: int, cursor: str | None = None) -> Page:
        """Events newest first (by start_event, then id), one page at a time.

        Keyset pagination: the cursor is the last item's (start_event, id), so
        inserts between two page requests never shift or duplicate items.
        """
        query = self.list_query(event_filter, cursor)
        documents = unavailable_on_connection_errors(
            lambda: list(self._collection(EVENTS).find(query).sort(NEWEST_FIRST).limit(limit + 1))
        )
        events = [_to_event(document) for document in documents[:limit]]
        next_cursor = None
        if len(documents) > limit:
            last = events[-1]
            next_cursor = encode_cursor(last.start_event, last.id)
        return Page(events, next_cursor)

    def explain_list(self, event_filter: EventFilter) -> Document:
        """The query plan of a list request (used by tests to prove index use)."""
        cursor = (
            self._collection(EVENTS)
            .find(self.list_query(event_filter, None))
            .sort(NEWEST_FIRST)
            .limit(100)
        )
        return cursor.explain()

    @staticmethod
    def list_query(event_filter: EventFilter, cursor: str | None) -> Document:
        """Build the filter document from typed values only."""
        clauses: list[Document] = []
        start_range: Document = {}
        if event_filter.start_from is not None:
            start_range["$gte"] = event_filter.start_from
        if event_filter.start_to is not None:
            start_range["$lt"] = event_filter.start_to
        if start_range:
            clauses.append({"start_event": start_range})
        if event_filter.name is not None:
            clauses.append({"name": str(event_filter.name)})
        if event_filter.status == "open":
            clauses.append({"stop_event": None})
        elif event_filter.status == "stopped":
            clauses.append({"stop_event": {"$ne": None}})
        if cursor is not None:
            after_start, after_id = decode_cursor(cursor)
            clauses.append(
                {
                    "$or": [
                        {"start_event": {"$lt": after_start}},
                        {"start_event": after_start, "_id": {"$lt": after_id}},
                    ]
                }
            )
        return {"$and": clauses} if clauses else {}
