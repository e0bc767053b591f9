"""Prometheus metrics: the numbers operators alert on.

Every label has a bounded set of values, so a client cannot create new time
series at will: the route *template* (``/api/v1/events/<event_id>``), never
the raw path; a known HTTP method or ``OTHER``; a certificate kind from a
fixed list.

This module knows neither Flask nor MongoDB's data: the Flask glue lives in
:mod:`eventsvc.observability`, and the store and the Vault keeper call the
``record_*``/``set_*`` functions below.

How metrics leave the process. gunicorn runs several worker processes, each
with its own counters, so scraping one worker would give a fraction of the
truth. prometheus_client's multiprocess mode solves this: with
``PROMETHEUS_MULTIPROC_DIR`` set (to an empty directory, before the process
starts: the library reads it at import) every process writes its values to
files there, and the gunicorn master serves their aggregate on
``127.0.0.1:<metrics_port>`` (:func:`start_metrics_server`). Loopback only and
no token: the port is for an agent or sidecar on the same host, never for the
network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from pymongo.monitoring import (
    ConnectionCheckedInEvent,
    ConnectionCheckedOutEvent,
    ConnectionCheckOutFailedEvent,
    ConnectionCheckOutStartedEvent,
    ConnectionClosedEvent,
    ConnectionCreatedEvent,
    ConnectionPoolListener,
    ConnectionReadyEvent,
    PoolClearedEvent,
    PoolClosedEvent,
    PoolCreatedEvent,
    PoolReadyEvent,
)

log = logging.getLogger(__name__)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_HOST = "127.0.0.1"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"  # 404s: the raw path would be unbounded
CertificateKind = Literal["mongodb_client", "https_server"]
# Seconds; an API call is ~ms, a MongoDB timeout is seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- HTTP ----------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "eventsvc_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "eventsvc_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
RATE_LIMITED = Counter("eventsvc_rate_limited", "Requests refused by a rate limit (429).")
AUDIT_WRITE_FAILURES = Counter(
    "eventsvc_audit_write_failures", "Audit records that could not be written."
)

# --- Vault (set by the lease keeper in the gunicorn master) ----------------
# "mostrecent": the last value set by any process wins; workers never set them.
VAULT_TOKEN_TTL = Gauge(
    "eventsvc_vault_token_ttl_seconds",
    "TTL of the Vault token as of its last login or renewal.",
    multiprocess_mode="mostrecent",
)
CERTIFICATE_EXPIRY = Gauge(
    "eventsvc_certificate_expiry_timestamp_seconds",
    "When the current certificate of each kind expires (Unix time).",
    ["kind"],
    multiprocess_mode="mostrecent",
)

# --- MongoDB connection pools (one pool per server, per worker) ----------
# "livesum": add up the workers that are alive now.
MONGODB_POOL_CONNECTIONS = Gauge(
    "eventsvc_mongodb_pool_connections",
    "Open connections in the MongoDB pools.",
    multiprocess_mode="livesum",
)
MONGODB_POOL_CHECKED_OUT = Gauge(
    "eventsvc_mongodb_pool_checked_out_connections",
    "MongoDB connections in use by a request right now.",
    multiprocess_mode="livesum",
)
MONGODB_POOL_CHECKOUT_FAILURES = Counter(
    "eventsvc_mongodb_pool_checkout_failures",
    "Failures to get a MongoDB connection, by pymongo's reason.",
    ["reason"],
)
MONGODB_POOL_CLEARED = Counter(
    "eventsvc_mongodb_pool_cleared",
    "Times a MongoDB pool was cleared (server marked unknown, e.g. a failover).",
)


def record_request(method: str, route: str | None, status: int, duration_seconds: float) -> None:
    """Count one answered request and its latency."""
    labels = {
        "method": method if method in KNOWN_METHODS else "OTHER",
        "route": route or UNMATCHED_ROUTE,
        "status": str(status),
    }
    HTTP_REQUESTS.labels(**labels).inc()
    HTTP_REQUEST_DURATION.labels(**labels).observe(duration_seconds)


def record_rate_limited() -> None:
    """Called by the rate limiter each time it answers 429."""
    RATE_LIMITED.inc()


def record_audit_failure() -> None:
    """Called when an audit record could not be written (the change was refused)."""
    AUDIT_WRITE_FAILURES.inc()


@contextmanager
def count_audit_failures() -> Iterator[None]:
    """Count an audit write that raised (and let the error propagate)."""
    try:
        yield
    except Exception:
        record_audit_failure()
        raise


def set_vault_token_ttl(ttl_seconds: float) -> None:
    """Called by the lease keeper after each login and renewal."""
    VAULT_TOKEN_TTL.set(ttl_seconds)


def set_certificate_expiry(kind: CertificateKind, expires_at: datetime) -> None:
    """Called when a certificate is issued: alert well before this time."""
    CERTIFICATE_EXPIRY.labels(kind=kind).set(expires_at.timestamp())


class MongoPoolMetrics(ConnectionPoolListener):
    """pymongo pool events → the pool gauges and counters.

    Register it per client (``MongoClient(..., event_listeners=[MongoPoolMetrics()])``).
    pymongo calls these methods on its own threads; they must stay cheap and
    must not raise.
    """

    def connection_created(self, event: ConnectionCreatedEvent) -> None:
        MONGODB_POOL_CONNECTIONS.inc()

    def connection_closed(self, event: ConnectionClosedEvent) -> None:
        MONGODB_POOL_CONNECTIONS.dec()

    def connection_checked_out(self, event: ConnectionCheckedOutEvent) -> None:
        MONGODB_POOL_CHECKED_OUT.inc()

    def connection_checked_in(self, event: ConnectionCheckedInEvent) -> None:
        MONGODB_POOL_CHECKED_OUT.dec()

    def connection_check_out_failed(self, event: ConnectionCheckOutFailedEvent) -> None:
        # pymongo's reasons are a fixed set: "timeout", "poolClosed", "connectionError".
        MONGODB_POOL_CHECKOUT_FAILURES.labels(reason=event.reason).inc()

    def pool_cleared(self, event: PoolClearedEvent) -> None:
        MONGODB_POOL_CLEARED.inc()

    # Events we do not count (the listener interface requires every method).
    def pool_created(self, event: PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: PoolReadyEvent) -> None:
        pass

    def pool_closed(self, event: PoolClosedEvent) -> None:
        pass

    def connection_ready(self, event: ConnectionReadyEvent) -> None:
        pass

    def connection_check_out_started(self, event: ConnectionCheckOutStartedEvent) -> None:
        pass


# --- Exposition (gunicorn master) ----------------------------------------


def multiprocess_dir() -> Path | None:
    """The multiprocess directory, or None when this process keeps metrics in memory."""
    value = os.environ.get(MULTIPROC_DIR_ENV)
    return Path(value) if value else None


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped library
    return registry


def start_metrics_server(port: int) -> None:
    """Serve the aggregate of all workers on ``127.0.0.1:port`` (gunicorn master).

    Refuses to start without multiprocess mode: the master alone would
    report none of the workers' requests, a silently wrong number.
    """
    directory = multiprocess_dir()
    if directory is None or not directory.is_dir():
        raise RuntimeError(
            f"a metrics port needs {MULTIPROC_DIR_ENV}: an empty directory, set before start"
        )
    start_http_server(port, addr=METRICS_HOST, registry=scrape_registry())
    log.info("metrics: serving on %s:%d", METRICS_HOST, port)


def worker_exited(arbiter: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live gauges (pool sizes)."""
    if multiprocess_dir() is not None:
        mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # untyped library
