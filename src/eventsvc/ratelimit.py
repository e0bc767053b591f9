"""Rate limits per client address and per token, counted in MongoDB.

Counters live in the application database (``rate_limit_*`` collections,
expired by a TTL index the migration creates), so every instance behind the
load balancer shares them: limits hold for the service, not for one process.

flask-limiter does the counting. We only give it our already authenticated
MongoDB client (no second credential, no connection string with a password)
and the two keys: the caller's address, and the token id once the token has
been verified.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter
from limits.errors import StorageError
from limits.storage import MongoDBStorage
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from eventsvc.auth import Unauthenticated, authenticate
from eventsvc.dbschema import COUNTERS, WINDOWS
from eventsvc.settings import Settings

log = logging.getLogger(__name__)


class SharedClientMongoDBStorage(MongoDBStorage):
    """limits' MongoDB storage, on a client we built (TLS, X.509/SCRAM, timeouts).

    The client belongs to the event store: this storage never closes it.
    limits would create its TTL indexes on first use; the app's MongoDB role
    may not (see :mod:`eventsvc.schema`), so the migration creates them
    (:data:`eventsvc.dbschema.RATE_LIMIT_SCHEMAS`) and this storage starts
    with its client already set, which skips that step.
    """

    STORAGE_SCHEME = ["eventsvc+mongodb"]  # noqa: RUF012 - the registry key limits reads

    def __init__(self, uri: str, *, client: MongoClient[Any], database_name: str) -> None:
        super().__init__(
            "mongodb://unused",
            database_name=database_name,
            counter_collection_name=COUNTERS,
            window_collection_name=WINDOWS,
            wrap_exceptions=True,
        )
        self._client = client
        self._storage = client  # set: limits' first-use index creation never runs

    def _init_mongo_client(self, uri: str | None, **options: Any) -> MongoClient[Any]:
        return self._client

    @property
    def _database(self) -> Database[Any]:
        """Counters are written acknowledged by the primary only, not journaled.

        A counter lost in a failover costs at most one window of slightly
        looser limiting; waiting for a majority journal on every request
        (two counters each) was the largest per-request cost in `make bench`.
        """
        return self.storage.get_database(
            self._database_name, write_concern=WriteConcern(w=1, j=False)
        )

    def __del__(self) -> None:
        """limits closes its client on garbage collection; ours is shared, so don't."""


def client_address() -> str:
    """The caller's address (behind trusted proxies, ProxyFix has already set it)."""
    return request.remote_addr or "unknown"


def token_key() -> str:
    """Limit per verified token; unauthenticated callers share their address's bucket."""
    try:
        return "token:" + authenticate().token.token_id
    except Unauthenticated:
        return "address:" + client_address()


def create_limiter(app: Flask, settings: Settings, client: MongoClient[Any]) -> Limiter:
    """A limiter bound to ``app``: per-address default limit, per-token limit on the API."""
    limiter = Limiter(
        key_func=client_address,
        app=app,
        application_limits=[settings.rate_limit_per_address],
        storage_uri="eventsvc+mongodb://",
        storage_options={"client": client, "database_name": settings.mongodb_database},  # type: ignore[dict-item]
        strategy="fixed-window",
        headers_enabled=True,
        # A storage outage must not turn into an open door or a 500: we
        # answer 503 through the usual store error path instead.
        swallow_errors=False,
        on_breach=_log_breach,
    )
    _headers_never_fail_a_response(app, limiter)
    return limiter


def _headers_never_fail_a_response(app: Flask, limiter: Limiter) -> None:
    """A storage outage while adding the rate-limit headers leaves them out, nothing more.

    flask-limiter adds ``X-RateLimit-*`` in an after_request hook that reads the
    counters again. When MongoDB goes away between the check and that read,
    it would raise and turn the response (a 201 for a write already committed,
    or the 503 already decided) into a 500. The check itself still fails
    closed (``swallow_errors=False`` above): only the headers are optional.
    """
    hooks = app.after_request_funcs.setdefault(None, [])
    for position, hook in enumerate(hooks):
        if isinstance(hook, partial) and hook.args[:1] == (limiter,):
            hooks[position] = partial(_inject_or_skip, hook)


def _inject_or_skip(inject: Any, response: Response) -> Response:
    try:
        injected: Response = inject(response)
    except StorageError as error:
        log.warning("rate-limit headers left out: storage unavailable: %s", error)
        return response
    return injected


def _log_breach(limit: Any) -> None:
    log.warning("rate limit exceeded", extra={"limit": str(limit.limit), "key": limit.key})
