"""Micro-benchmarks on a real mongod: what each app operation costs next to plain pymongo.

Every row is printed as operations per second and as a ratio to a baseline
measured in the same run, on the same mongod and client: absolute numbers
depend on the machine and its load, ratios much less so. Subject and
baseline run in alternating rounds so background load hits both alike.
Nothing here asserts on time.

    make bench                   # about 30 s
    make bench BENCH_ARGS=--quick
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.write_concern import WriteConcern

from eventsvc.api.schemas import EventCreate
from eventsvc.app import create_app
from eventsvc.domain import MAX_BATCH_EVENTS
from eventsvc.ratelimit import RateCounter
from eventsvc.services import Services
from eventsvc.settings import Rate
from eventsvc.store import EVENTS, EventFilter, EventStore, NewEvent
from eventsvc.tokencache import token_cache
from eventsvc.tokens import SCOPES, TOKENS, TokenStore, parse_token_id
from perf.audit_bench import BenchmarkResult, benchmark
from perf.stack import PERF_CONTEXT, PerfStack, perf_stack

Operation = Callable[[], object]
Document = dict[str, object]

WARMUP_CALLS = 20
SEEDED_EVENTS = 5000
PAGE_SIZE = 50
CREATE_BODY = json.dumps(
    {
        "name": "bench",
        "start_event": "2026-01-31T12:00:00Z",
        "attributes": {"site": "lab-1", "kind": "benchmark"},
    }
).encode()


@dataclass(frozen=True)
class Row:
    case: str
    ops_per_second: float
    baseline: str
    baseline_ops_per_second: float

    @property
    def ratio(self) -> float:
        return self.ops_per_second / self.baseline_ops_per_second

    @property
    def extra_ms(self) -> float:
        """What the case costs on top of its baseline, per operation (one thread)."""
        return 1000 / self.ops_per_second - 1000 / self.baseline_ops_per_second


def interleaved_rates(
    operations: Mapping[str, Operation], seconds: float, rounds: int = 3
) -> dict[str, float]:
    """Operations per second of each operation, run ``seconds`` each in alternating rounds."""
    for operation in operations.values():
        for _ in range(WARMUP_CALLS):
            operation()
    calls = dict.fromkeys(operations, 0)
    elapsed = dict.fromkeys(operations, 0.0)
    for _ in range(rounds):
        for name, operation in operations.items():
            started = time.perf_counter()
            deadline = started + seconds / rounds
            while True:
                operation()
                calls[name] += 1
                now = time.perf_counter()
                if now >= deadline:
                    break
            elapsed[name] += now - started
    return {name: calls[name] / elapsed[name] for name in operations}


def threaded_rate(operation: Operation, count: int, threads: int) -> float:
    """Operations per second of ``count`` calls spread over ``threads`` threads."""
    for _ in range(WARMUP_CALLS):  # connections, and the collection on its first insert
        operation()
    shares = [count // threads + (1 if index < count % threads else 0) for index in range(threads)]

    def work(share: int) -> None:
        for _ in range(share):
            operation()

    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def event_document(start_event: datetime) -> Document:
    """An event as the validator accepts it, written without the store."""
    return {
        "_id": ObjectId(),
        "name": "bench",
        "start_event": start_event,
        "stop_event": None,
        "attributes": {"site": "lab-1", "kind": "benchmark"},
        "version": 1,
    }


def fresh_inserts(collection: Collection[Document]) -> Operation:
    """Inserts a new small document per call (insert_one adds ``_id`` to what it is given)."""
    return lambda: collection.insert_one({"n": 1})


def majority(collection: Collection[Document]) -> Collection[Document]:
    return collection.with_options(write_concern=WriteConcern(w="majority", j=True))


# --- the benchmarks ----------------------------------------------------------------------


def bench_request_guards(stack: PerfStack, seconds: float) -> list[Row]:
    """What every API request pays before its own work: the token check and the rate limiter."""
    token = stack.tokens.create("bench", sorted(SCOPES), timedelta(hours=1), PERF_CONTEXT).token
    token_id = parse_token_id(token)
    tokens = stack.store.database[TOKENS]
    # The counter exactly as the app builds it (one hit per request).
    counters = RateCounter(stack.store.database)
    rate = Rate(count=1_000_000_000, seconds=60)
    rates = interleaved_rates(
        {
            "auth": lambda: stack.tokens.authenticate(token),
            "limit": lambda: counters.hit(f"bench/{token_id}", rate),
            "find": lambda: tokens.find_one({"_id": token_id}),
        },
        seconds,
    )
    baseline = "find_one by _id"
    return [
        Row("token authentication (HMAC + lookup)", rates["auth"], baseline, rates["find"]),
        Row("rate-limit counter hit (w:1)", rates["limit"], baseline, rates["find"]),
    ]


def bench_list(stack: PerfStack, seconds: float) -> list[Row]:
    events = majority(stack.store.database[EVENTS])
    newest = datetime.now(UTC)
    events.insert_many(
        [event_document(newest - timedelta(minutes=index)) for index in range(SEEDED_EVENTS)]
    )
    store: EventStore = stack.store
    first_page = store.list(EventFilter(), PAGE_SIZE)
    middle = store.list(EventFilter(start_to=newest - timedelta(minutes=SEEDED_EVENTS // 2)), 1)
    deep_cursor = middle.next_cursor or first_page.next_cursor
    rates = interleaved_rates(
        {
            "first": lambda: store.list(EventFilter(), PAGE_SIZE),
            "cursor": lambda: store.list(EventFilter(), PAGE_SIZE, deep_cursor),
            "find": lambda: list(events.find().limit(PAGE_SIZE)),
        },
        seconds,
    )
    baseline = f"find().limit({PAGE_SIZE}), no sort"
    return [
        Row(
            f"list page of {PAGE_SIZE} (start_event index)", rates["first"], baseline, rates["find"]
        ),
        Row(f"list page of {PAGE_SIZE} after a cursor", rates["cursor"], baseline, rates["find"]),
    ]


def bench_create(stack: PerfStack, seconds: float) -> list[Row]:
    events = majority(stack.store.database[EVENTS])
    client = stack.store.client

    def create_event() -> None:
        body = EventCreate.model_validate_json(CREATE_BODY)
        stack.store.create(NewEvent(body.name, body.start_event, body.attributes), PERF_CONTEXT)

    def insert_in_transaction() -> None:
        def work(session: ClientSession) -> None:
            events.insert_one(event_document(datetime.now(UTC)), session=session)

        with client.start_session() as session:
            session.with_transaction(work, write_concern=WriteConcern(w="majority", j=True))

    rates = interleaved_rates(
        {
            "create": create_event,
            "transaction": insert_in_transaction,
            "insert": lambda: events.insert_one(event_document(datetime.now(UTC))),
        },
        seconds,
    )
    baseline = "insert_one w:majority"
    return [
        Row("create event (validate + txn + audit)", rates["create"], baseline, rates["insert"]),
        Row(
            "  for reference: insert_one in a txn", rates["transaction"], baseline, rates["insert"]
        ),
    ]


def bench_app(stack: PerfStack, seconds: float) -> list[Row]:
    """Whole requests through the Flask app (no TLS, no gunicorn), next to ``/healthz``.

    What every API request pays in the app itself: middleware, the rate
    limiter, the token check, validation, JSON, and the route's own work.
    """
    # The tokens as a worker has them: cached while the revocation watch is live.
    cache = token_cache(stack.settings)
    tokens = TokenStore(
        stack.store.database,
        stack.token_pepper.get_secret_value().encode(),
        stack.store.audit,
        cache,
    )
    tokens.watch_revocations()
    deadline = time.monotonic() + 10
    while cache is not None and not cache.live and time.monotonic() < deadline:
        time.sleep(0.01)
    services = Services(events=stack.store, tokens=tokens, audit=stack.store.audit)
    client = create_app(stack.settings, services).test_client()
    token = stack.tokens.create("bench", sorted(SCOPES), timedelta(hours=1), PERF_CONTEXT).token
    headers = {"Authorization": f"Bearer {token}"}
    batch_body = json.dumps(
        {"events": [json.loads(CREATE_BODY) for _ in range(MAX_BATCH_EVENTS)]}
    ).encode()

    def expect(status: int, response: object) -> None:
        code = getattr(response, "status_code", None)
        if code != status:
            raise RuntimeError(f"expected {status}, got {code}")

    rates = interleaved_rates(
        {
            "list": lambda: expect(200, client.get("/api/v1/events?limit=20", headers=headers)),
            "create": lambda: expect(
                201,
                client.post(
                    "/api/v1/events",
                    data=CREATE_BODY,
                    headers={**headers, "Content-Type": "application/json"},
                ),
            ),
            "batch": lambda: expect(
                200,
                client.post(
                    "/api/v1/events:batch",
                    data=batch_body,
                    headers={**headers, "Content-Type": "application/json"},
                ),
            ),
            "healthz": lambda: expect(200, client.get("/healthz")),
        },
        seconds,
    )
    tokens.stop_watching()
    baseline = "GET /healthz (whole app)"
    return [
        Row("GET /api/v1/events?limit=20 (app)", rates["list"], baseline, rates["healthz"]),
        Row("POST /api/v1/events (app)", rates["create"], baseline, rates["healthz"]),
        Row(
            f"  events/s in batches of {MAX_BATCH_EVENTS} (app)",
            rates["batch"] * MAX_BATCH_EVENTS,
            "events/s by POST /api/v1/events",
            rates["create"],
        ),
    ]


def combined(results: list[BenchmarkResult]) -> BenchmarkResult:
    """Several audit benchmark runs as one (rates from summed counts and summed times)."""

    def rate(per_second: Callable[[BenchmarkResult], float]) -> float:
        return sum(r.appends for r in results) / sum(r.appends / per_second(r) for r in results)

    return replace(
        results[0],
        appends=sum(r.appends for r in results),
        appends_per_second=rate(lambda r: r.appends_per_second),
        hashes_per_second=rate(lambda r: r.hashes_per_second),
        verified_per_second=rate(lambda r: r.verified_per_second),
    )


def bench_audit(stack: PerfStack, records: int, rounds: int = 3) -> tuple[list[Row], list[str]]:
    """perf.audit_bench at 1 and 4 threads, next to plain inserts at the same thread count.

    Each runs in ``rounds`` chunks alternating with the baseline, every chunk
    in a fresh scratch database (verify() checks every chain it finds). The
    app user cannot reach those databases, so this part runs as the
    devstack's admin user, baseline included: same client, same write concern.
    """
    rows: list[Row] = []
    notes: list[str] = []
    chunk = max(records // rounds, 1)
    with stack.mongod.admin_client(w="majority", journal=True) as admin:
        # One long-lived collection: a just-created one is slow for a moment.
        plain = fresh_inserts(majority(admin["bench_baseline"]["plain_inserts"]))
        for threads in (1, 4):
            results: list[BenchmarkResult] = []
            baseline_seconds = 0.0
            for chunk_number in range(rounds):
                scratch = admin[f"bench_audit_{threads}_{chunk_number}"]
                baseline_seconds += chunk / threaded_rate(plain, chunk, threads)
                results.append(benchmark(scratch, chunk, threads=threads))
                admin.drop_database(scratch.name)
            result = combined(results)
            rows.append(
                Row(
                    f"audit append ({threads} thread{'s' if threads > 1 else ''})",
                    result.appends_per_second,
                    f"insert_one w:majority ({threads} thr)",
                    chunk * rounds / baseline_seconds,
                )
            )
            notes.append(result.describe())
    return rows, notes


# --- output ------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    header = f"{'case':<42} {'ops/s':>8}  {'baseline':<34} {'ops/s':>8} {'ratio':>7} {'+ms/op':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.case:<42} {row.ops_per_second:>8,.0f}  {row.baseline:<34} "
            f"{row.baseline_ops_per_second:>8,.0f} {'x' + format(row.ratio, '.2f'):>7} "
            f"{row.extra_ms:>7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.6 s per side, 200 audit records")
    parser.add_argument("--seconds", type=float, default=3.0, help="per operation and case")
    parser.add_argument("--audit-records", type=int, default=1000, help="per audit benchmark run")
    parser.add_argument(
        "--only", choices=["guards", "list", "create", "app", "audit"], help="run one group only"
    )
    args = parser.parse_args(argv)
    seconds, records = (0.6, 200) if args.quick else (args.seconds, args.audit_records)

    started = time.perf_counter()
    print(f"eventsvc bench: {seconds:g} s per operation, {records} audit records per run")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    with perf_stack() as stack:
        with stack.mongod.admin_client() as admin:
            version = admin.server_info()["version"]
        print(f"mongod {version} (single-node replica set, auth on, w:majority j:true)\n")
        groups: dict[str, Callable[[], list[Row]]] = {
            "guards": lambda: bench_request_guards(stack, seconds),
            "list": lambda: bench_list(stack, seconds),
            "create": lambda: bench_create(stack, seconds),
            "app": lambda: bench_app(stack, seconds),
        }
        rows: list[Row] = []
        notes: list[str] = []
        for name, group in groups.items():
            if args.only in (None, name):
                rows += group()
        if args.only in (None, "audit"):
            audit_rows, notes = bench_audit(stack, records)
            rows += audit_rows
    print(table(rows))
    print("\nratio = case ops/s / baseline ops/s (same run); +ms/op = 1000/ops - 1000/baseline ops")
    for note in notes:
        print(f"  {note}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
