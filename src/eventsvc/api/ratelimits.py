"""Which limit a request counts against, its ``X-RateLimit-*`` headers, and 429.

- A request to a route that needs a scope, with a **valid token**, counts
  against that token (``rate_limit_per_token``). The token is verified first;
  the verified principal is kept on ``g``, so the scope check that follows
  (:func:`eventsvc.auth.authorize_request`) does not verify it again.
- **Every other request** counts against the client address
  (``rate_limit_per_address``): no token or a refused one (guessing tokens),
  the public API docs, an unknown path, a CORS preflight. The probes (the
  ``health`` blueprint) are not counted: orchestrators poll them.
- Per-address limits of *authenticated* traffic belong to the gateway in
  front (DESIGN.md): the app never counts one request twice.

Each request costs one counter hit, one MongoDB round trip
(:class:`eventsvc.ratelimit.RateCounter`, where the tolerance is stated).
Over the limit, the error handler answers ``429`` problem+json with
``Retry-After``; every counted response carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from pymongo.database import Database

from eventsvc.auth import SCOPE_REQUIREMENT_ATTRIBUTE, Unauthenticated, authenticate
from eventsvc.ratelimit import Document, RateCounter, WindowCount
from eventsvc.settings import Rate, Settings

log = logging.getLogger(__name__)

WINDOW_COUNT_KEY = "rate_limit"  # on flask.g: this request's count, for the headers


class RateLimited(Exception):
    """Over the limit: 429 with ``Retry-After``."""

    def __init__(self, count: WindowCount, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded: {count.limit} requests per window")
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimits:
    """The app's two limits and the counter they share."""

    counter: RateCounter
    per_token: Rate
    per_address: Rate
    exempt_blueprints: frozenset[str]

    def check(self) -> None:
        """``before_request``: count the caller once; raise RateLimited over the limit.

        A refused token is counted against the address and then refused as
        before (401), unless the address is over its limit (429).
        """
        if request.blueprint in self.exempt_blueprints:
            return
        if not _route_needs_token():
            self._count(_address_key(), self.per_address)
            return
        try:
            token_id = authenticate().token.token_id
        except Unauthenticated:
            self._count(_address_key(), self.per_address)
            raise
        self._count(f"token:{token_id}", self.per_token)

    def _count(self, key: str, rate: Rate) -> None:
        now = time.time()
        count = self.counter.hit(key, rate, now)
        setattr(g, WINDOW_COUNT_KEY, count)
        if count.exceeded:
            log.warning("rate limit exceeded", extra={"key": key, "limit": count.limit})
            raise RateLimited(count, count.retry_after(now))


def _route_needs_token() -> bool:
    """True when the matched view demands a scope (CORS preflights never do)."""
    if request.endpoint is None or request.method == "OPTIONS":
        return False
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, SCOPE_REQUIREMENT_ATTRIBUTE, None) is not None


def _address_key() -> str:
    """The caller's address (behind trusted proxies, ProxyFix has already set it)."""
    return f"address:{request.remote_addr or 'unknown'}"


def add_rate_limit_headers(response: Response) -> Response:
    """``after_request``: the count this request was decided on, also on a 429."""
    count = g.get(WINDOW_COUNT_KEY)
    if isinstance(count, WindowCount):
        response.headers["X-RateLimit-Limit"] = str(count.limit)
        response.headers["X-RateLimit-Remaining"] = str(count.remaining)
        response.headers["X-RateLimit-Reset"] = str(count.reset_at)
    return response


def install_rate_limits(
    app: Flask,
    settings: Settings,
    database: Database[Document],
    exempt_blueprints: Iterable[str],
) -> None:
    """Count every request but the exempt blueprints'; register before the scope check."""
    limits = RateLimits(
        counter=RateCounter(database),
        per_token=Rate.parse(settings.rate_limit_per_token),
        per_address=Rate.parse(settings.rate_limit_per_address),
        exempt_blueprints=frozenset(exempt_blueprints),
    )
    app.before_request(limits.check)
    app.after_request(add_rate_limit_headers)
