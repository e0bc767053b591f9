"""The audit writer: appends records to hash chains and signs their heads.

**One chain per writer thread.** Each :class:`AuditLog` (one per process) is a
writer with a random ``writer_id``; each thread that appends gets its own
chain ``<writer_id>/<n>``. A chain per thread is finer than a chain per
process and keeps the same promise: no instance and no thread ever waits on
another one's chain head, and nothing is serialised on one document. A
restarted process is a new writer, hence new chains.

**The head advances only when the record is durable.** A record appended
inside the caller's transaction may still be rolled back, so the thread's
head then becomes *pending*. The next append of that thread settles it by
reading the chain's last record from MongoDB (within the caller's
transaction, if there is one, which sees its own uncommitted records), so an
aborted transaction's sequence number is simply reused and the chain stays
continuous. The unique index on ``(chain, sequence)`` is the backstop: two
records can never claim the same place in a chain.

**Checkpoints** sign every chain head of one writer (``audit_checkpoints``):
every ``checkpoint_every`` records, and whenever :meth:`AuditLog.checkpoint`
is called, which the thread :func:`start_checkpoints` does periodically and
the server does when a worker exits (also at every reload). Once that thread
runs, it also makes the ``checkpoint_every`` checkpoints, woken by the append
that reaches the count: signing goes through Vault, and a request must not
wait for Vault (an unreachable Vault held requests for its 10 s timeout). They make a
cut-off tail visible: records deleted from the end of a chain are detected
up to the last checkpoint. Each checkpoint is signed with Ed25519 (through
Vault transit in production: the service can sign, never read the key, see
:mod:`.signing`) and names the hash of the writer's previous checkpoint, so
a removed or reordered checkpoint breaks that chain too. With a
``checkpoint_anchor`` (Vault, see :mod:`eventsvc.vault.anchors`) each stored
checkpoint is also appended outside MongoDB, so emptying the database is
detected. Records written after the last checkpoint can still be dropped
unnoticed: checkpoints are written often for that reason.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from eventsvc.audit.record import (
    AUDIT,
    AUDIT_CHECKPOINTS,
    CHECKPOINT_FORMAT,
    GENESIS,
    WRITER_ID,
    AuditEntry,
    AuditRecord,
    ChainHead,
    Document,
    Outcome,
    check_key,
    checkpoint_hash,
    checkpoint_message,
    next_record,
)
from eventsvc.audit.schema import ensure_schema
from eventsvc.audit.signing import CheckpointAnchor, CheckpointSigner, CheckpointSigningFailed
from eventsvc.clock import rfc3339, truncate_to_ms, utc_now
from eventsvc.domain import RequestContext
from eventsvc.metrics import count_audit_failures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ChainState:
    """A thread's chain: the last durable head, and the last record not yet known durable."""

    committed: ChainHead
    pending: ChainHead | None = None


class AuditLog:
    """Appends records to this writer's chains and signs their heads.

    One instance per process. Thread-safe: each thread writes its own chain;
    a short lock only guards the table of heads that checkpoints sign, and is
    never held during I/O.
    """

    def __init__(
        self,
        database: Database[Document],
        hmac_key: bytes,
        signer: CheckpointSigner,
        *,
        writer_id: str | None = None,
        checkpoint_every: int = 100,
        checkpoint_anchor: CheckpointAnchor | None = None,
    ) -> None:
        check_key(hmac_key, "hmac_key")
        if writer_id is not None and not WRITER_ID.match(writer_id):
            raise ValueError("writer_id must be 1-64 letters, digits, '_' or '-'")
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self._database = database
        self._hmac_key = hmac_key
        self._signer = signer
        self._anchor = checkpoint_anchor
        self._checkpoint_every = checkpoint_every
        self.writer_id = writer_id or uuid.uuid4().hex
        self._chain_numbers = itertools.count(1)
        self._local = threading.local()
        self._heads_lock = threading.Lock()
        self._chains: dict[str, _ChainState] = {}
        self._appends_since_checkpoint = 0
        # The writer's checkpoint chain: one checkpoint at a time, each naming the last.
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_number = 0
        self._last_checkpoint = GENESIS.hash
        # Set by start_checkpoints: count checkpoints are then made by its thread.
        self._checkpoint_wanted: threading.Event | None = None

    def __repr__(self) -> str:
        return f"AuditLog(writer_id={self.writer_id!r})"

    # --- lifecycle ------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create both audit collections with validators and indexes (see :mod:`.schema`)."""
        ensure_schema(self._database)

    def _collection(self, name: str) -> Collection[Document]:
        # "local" reads on the primary see a transaction as soon as its commit
        # returns; inside a transaction pymongo uses the transaction's own.
        return self._database.get_collection(
            name,
            write_concern=WriteConcern(w="majority", j=True),
            read_concern=ReadConcern("local"),
        )

    # --- appending ------------------------------------------------------
    def append(self, entry: AuditEntry, *, session: ClientSession | None = None) -> AuditRecord:
        """Write ``entry`` as the next record of this thread's chain and return it.

        Pass the caller's ``session`` to write inside its transaction: the
        record then commits or aborts with the change it describes. Without a
        transaction the record is durable (majority, journaled) on return.
        Errors propagate; the chain stays continuable either way.
        """
        chain = self._thread_chain()
        in_transaction = session is not None and session.in_transaction
        head = self._tip(chain, session if in_transaction else None)
        record = next_record(chain, head, entry, truncate_to_ms(utc_now()), self._hmac_key)
        # Until we know the insert is durable, the next append must check.
        self._set_state(chain, _ChainState(head, pending=_head_of(record)))
        try:
            self._collection(AUDIT).insert_one(record.document(), session=session)
        except DuplicateKeyError:
            # Only if someone else wrote into this chain; the pending state
            # makes the next append continue from what is really stored.
            log.error("audit chain %s: sequence %d already taken", chain, record.sequence)
            raise
        if not in_transaction:
            self._set_state(chain, _ChainState(_head_of(record)))
        self._count_and_maybe_checkpoint()
        return record

    def append_change(
        self,
        context: RequestContext,
        action: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        *,
        session: ClientSession,
    ) -> AuditRecord:
        """Record a successful change inside its transaction (target: the document's _id).

        A failure is counted (eventsvc_audit_write_failures_total) and raised,
        so the transaction, and with it the change, is aborted.
        """
        target = str((after or before or {}).get("_id"))
        entry = _entry(context, action, target, "success", before=before, after=after)
        with count_audit_failures():
            return self.append(entry, session=session)

    def append_changes(
        self,
        context: RequestContext,
        action: str,
        changes: Sequence[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]],
        *,
        session: ClientSession,
    ) -> list[AuditRecord]:
        """Record several changes of one transaction, one record each, in one insert.

        The records chain one after another from this thread's head exactly
        as consecutive :meth:`append_change` calls would (same rules, same
        verification), but the head is settled at most once and the records
        go to MongoDB in one ``insert_many``. Call it once per transaction.
        Failures are counted and raised, aborting the transaction.
        """
        if not session.in_transaction or not changes:
            raise ValueError("append_changes writes one or more records in a transaction")
        chain = self._thread_chain()
        with count_audit_failures():
            tip = self._tip(chain, session)
            now = truncate_to_ms(utc_now())
            records: list[AuditRecord] = []
            head = tip
            for before, after in changes:
                target = str((after or before or {}).get("_id"))
                entry = _entry(context, action, target, "success", before=before, after=after)
                record = next_record(chain, head, entry, now, self._hmac_key)
                records.append(record)
                head = _head_of(record)
            self._set_state(chain, _ChainState(tip, pending=head))
            self._collection(AUDIT).insert_many(
                [record.document() for record in records], ordered=True, session=session
            )
        self._count_and_maybe_checkpoint(len(records))
        return records

    def committed(self, record: AuditRecord) -> None:
        """``record``'s transaction has committed: it is durable, chain from it in memory.

        Stores call this after ``with_transaction`` returned (it never returns
        for an aborted transaction) with the last record the transaction
        wrote, so the thread's next append needs no read of the chain's tip:
        one round trip less per change. Only that exact record, if it is
        still this thread's pending head, is promoted; anything else (a
        record from another thread or an older transaction) changes nothing.
        """
        chain: str | None = getattr(self._local, "chain", None)
        if chain is None or chain != record.chain:
            return
        with self._heads_lock:
            state = self._chains[chain]
            if state.pending is not None and state.pending == _head_of(record):
                self._chains[chain] = _ChainState(state.pending)

    def append_denied(
        self, context: RequestContext, target: str, detail: str, *, count: int = 1
    ) -> AuditRecord:
        """Record ``count`` refused requests (401, 403, 429); failures are counted and raised.

        :class:`eventsvc.audit.denials.DenialRecorder` decides how many
        requests one record stands for; this only writes it.
        """
        entry = _entry(
            context, "request.denied", target[:200], "denied", detail=detail[:200], count=count
        )
        with count_audit_failures():
            return self.append(entry)

    def _thread_chain(self) -> str:
        """This thread's chain id, created on its first append.

        Numbered, not named after the thread: thread idents are reused after a
        thread ends, and a reused id would collide with the old chain.
        """
        chain: str | None = getattr(self._local, "chain", None)
        if chain is None:
            chain = f"{self.writer_id}/{next(self._chain_numbers)}"
            self._local.chain = chain
            self._set_state(chain, _ChainState(GENESIS))
        return chain

    def _tip(self, chain: str, session: ClientSession | None) -> ChainHead:
        """The head to chain from; settles a pending head against the database."""
        state = self._chains[chain]
        if state.pending is None:
            return state.committed
        head = self._stored_tip(chain, session)
        if session is None:  # outside a transaction the answer is final
            self._set_state(chain, _ChainState(head))
        return head

    def _stored_tip(self, chain: str, session: ClientSession | None) -> ChainHead:
        last = self._collection(AUDIT).find_one(
            {"chain": chain},
            projection={"_id": False, "sequence": True, "hash": True},
            sort=[("sequence", DESCENDING)],
            session=session,
        )
        return GENESIS if last is None else ChainHead(int(last["sequence"]), str(last["hash"]))

    def _set_state(self, chain: str, state: _ChainState) -> None:
        with self._heads_lock:
            self._chains[chain] = state

    def _count_and_maybe_checkpoint(self, appended: int = 1) -> None:
        with self._heads_lock:
            self._appends_since_checkpoint += appended
            due = self._appends_since_checkpoint >= self._checkpoint_every
            if due:
                self._appends_since_checkpoint = 0
        if due and self._checkpoint_wanted is not None:
            self._checkpoint_wanted.set()
        elif due:
            try:
                self.checkpoint("count")
            except (PyMongoError, CheckpointSigningFailed):
                # The record itself is written; a missed checkpoint only
                # delays truncation evidence until the next one.
                log.warning("audit checkpoint failed; retrying after more records", exc_info=True)

    # --- checkpoints ----------------------------------------------------
    def checkpoint(self, reason: str = "manual") -> None:
        """Sign and store the durable head of every chain of this writer.

        A pending head (its transaction's outcome not yet seen by its thread)
        is included only if that exact record is in the database; otherwise
        the last head known durable is signed. Heads are taken from memory,
        never from the database, so a checkpoint cannot bless a cut-off chain.
        ``reason`` (interval, count, exit, manual) is signed with it.
        """
        with self._checkpoint_lock:
            self._checkpoint(reason)

    def _checkpoint(self, reason: str) -> None:
        with self._heads_lock:
            states = dict(self._chains)
        heads: dict[str, Document] = {}
        for chain, state in sorted(states.items()):
            head = state.committed
            if state.pending is not None and self._is_stored(chain, state.pending):
                head = state.pending
            if head.sequence > 0:
                heads[chain] = {"sequence": head.sequence, "hash": head.hash}
        if not heads:
            return
        now = truncate_to_ms(utc_now())
        fields: Document = {
            "format": CHECKPOINT_FORMAT,
            "writer_id": self.writer_id,
            "number": self._checkpoint_number + 1,
            "prev_checkpoint": self._last_checkpoint,
            "reason": reason,
            "heads": heads,
            "time": rfc3339(now),
        }
        signature = self._signer.sign(checkpoint_message(fields))
        digest = checkpoint_hash(fields)
        try:
            self._collection(AUDIT_CHECKPOINTS).insert_one(
                {**fields, "time": now, "hash": digest, "signature": signature}
            )
        except DuplicateKeyError:
            # An earlier insert succeeded but its answer was lost: continue from it.
            self._resume_checkpoint_chain()
            raise
        self._checkpoint_number += 1
        self._last_checkpoint = digest
        if self._anchor is not None:
            anchored = {**fields, "hash": digest, "signature": signature}
            try:
                self._anchor.append(anchored)
            except CheckpointSigningFailed:
                # Stored in MongoDB already; the next anchor covers these heads too.
                log.warning("audit checkpoint %d not anchored", self._checkpoint_number)
        log.info(
            "audit checkpoint %d (%s) of %d chain(s) for writer %s",
            self._checkpoint_number,
            reason,
            len(heads),
            self.writer_id,
        )

    def _resume_checkpoint_chain(self) -> None:
        last = self._collection(AUDIT_CHECKPOINTS).find_one(
            {"writer_id": self.writer_id},
            projection={"_id": False, "number": True, "hash": True},
            sort=[("number", DESCENDING)],
        )
        if last is not None:
            self._checkpoint_number = int(last["number"])
            self._last_checkpoint = str(last["hash"])

    def _is_stored(self, chain: str, head: ChainHead) -> bool:
        found = self._collection(AUDIT).find_one(
            {"chain": chain, "sequence": head.sequence, "hash": head.hash},
            projection={"_id": True},
        )
        return found is not None


def _head_of(record: AuditRecord) -> ChainHead:
    return ChainHead(record.sequence, record.hash)


def _entry(
    context: RequestContext,
    action: str,
    target: str,
    outcome: Outcome,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str | None = None,
    count: int | None = None,
) -> AuditEntry:
    """An entry for what ``context`` (who, from where, which request) did."""
    return AuditEntry(
        actor=context.actor,
        action=action,
        target=target,
        outcome=outcome,
        before=before,
        after=after,
        client_address=context.client_address,
        request_id=context.request_id,
        trace_id=context.trace_id,
        detail=detail,
        client_request_id=context.client_request_id,
        client_traceparent=context.client_traceparent,
        count=count,
    )


def start_checkpoints(audit: AuditLog, interval_seconds: float) -> threading.Thread:
    """Sign this writer's chain heads every ``interval_seconds`` in a daemon thread,
    and every ``checkpoint_every`` records (the appending thread only wakes it).

    A tail cut after the last checkpoint goes unnoticed, so the interval is
    the window an attacker with database access has; failures are logged
    and retried at the next tick, never fatal to the service. Requests never
    sign: a slow or unreachable Vault delays checkpoints, not requests.
    """

    wanted = threading.Event()
    audit._checkpoint_wanted = wanted  # from now on, appends wake this thread

    def run() -> None:
        while True:
            reason = "count" if wanted.wait(interval_seconds) else "interval"
            wanted.clear()
            try:
                audit.checkpoint(reason)
            except Exception:
                log.exception("audit checkpoint failed; retrying in %.0f s", interval_seconds)

    thread = threading.Thread(target=run, name="audit-checkpoints", daemon=True)
    thread.start()
    return thread
