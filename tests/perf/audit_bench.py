"""Audit throughput on a real mongod: durable appends, hashing alone, and verification.

Used by ``make bench`` (perf.bench) and printed by the integration tests;
built on the public audit API only.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import GENESIS, MIN_KEY_BYTES, AuditEntry, next_record
from eventsvc.audit.signing import LocalCheckpointSigner
from eventsvc.audit.verify import verify
from eventsvc.clock import truncate_to_ms, utc_now


@dataclass(frozen=True)
class BenchmarkResult:
    """Audit throughput measured against a real MongoDB (and without it, for hashing)."""

    appends: int
    threads: int
    appends_per_second: float
    hashes_per_second: float
    verified_per_second: float

    def describe(self) -> str:
        return (
            f"audit: {self.appends} appends on {self.threads} thread(s): "
            f"{self.appends_per_second:,.0f} records/s durable (w:majority, j:true); "
            f"{self.hashes_per_second:,.0f} records/s hashing only; "
            f"verify {self.verified_per_second:,.0f} records/s "
            "(Crosby & Wallach 2009: 1,750 events/s on one core)"
        )


def benchmark(
    database: Database[dict[str, Any]], n: int = 2000, *, threads: int = 1
) -> BenchmarkResult:
    """Append ``n`` records from ``threads`` threads into ``database``, then verify them all.

    Use a scratch database: verify() checks every chain in it, and the
    records written here stay there. "Hashing only" builds the same records
    the writer builds (:func:`next_record`, clock included) without storing them.
    """
    key = secrets.token_bytes(MIN_KEY_BYTES)
    signer = LocalCheckpointSigner.generate()
    audit = AuditLog(database, key, signer)
    audit.ensure_schema()
    entry = AuditEntry(
        actor="token:bench",
        action="event.create",
        target="0" * 24,
        outcome="success",
        before=None,
        after={"name": "bench", "start_event": datetime.now(UTC), "attributes": {"k": "v"}},
        client_address="127.0.0.1",
        request_id="bench",
        trace_id=None,
    )
    hashing_started = time.perf_counter()
    for _ in range(n):
        next_record("bench/0", GENESIS, entry, truncate_to_ms(utc_now()), key)
    hashing_seconds = time.perf_counter() - hashing_started

    def worker(count: int) -> None:
        for _ in range(count):
            audit.append(entry)

    per_thread = [n // threads + (1 if index < n % threads else 0) for index in range(threads)]
    workers = [threading.Thread(target=worker, args=(count,)) for count in per_thread]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    append_seconds = time.perf_counter() - started
    audit.checkpoint()
    verify_started = time.perf_counter()
    report = verify(database, key, signer.public_keys())
    verify_seconds = time.perf_counter() - verify_started
    return BenchmarkResult(
        appends=n,
        threads=threads,
        appends_per_second=n / append_seconds,
        hashes_per_second=n / hashing_seconds,
        verified_per_second=report.records_checked / verify_seconds,
    )
