"""Verified tokens kept in a worker for seconds, dropped when the token's record changes.

Checking a token costs a MongoDB read; most requests come from a few tokens
that stay valid for days. A worker therefore keeps the tokens it verified
(keyed by token id, holding the keyed digest of the presented token, so a
different secret with the same id never matches) for ``ttl_seconds`` at most,
``max_entries`` at most (least recently used go first).

**Revocation.** A thread in each worker watches the ``api_tokens``
collection through a MongoDB change stream; any update, replace or delete
of a token record drops that token from the cache at once. The worker that
revokes drops it itself, and answers only once its own stream has reported
the revocation (at most ``STALE_AFTER_SECONDS``): by then the same change
has been sent to every other worker's stream. The cache is trusted only
while the stream is open and has answered within ``STALE_AFTER_SECONDS``
(a getMore returns at least every ``AWAIT_SECONDS``, events or not):
otherwise every request reads the database again (fail safe). When the
stream (re)opens, everything cached before is dropped; a verification that
was in flight while any token changed is not cached (a generation count),
so an entry read before a revocation cannot outlive the event that reports
it.

What remains, stated in README: a worker that did not make the change
refuses the token as soon as its stream delivers the update, typically a
few milliseconds after the revocation commits; a request arriving in that
gap is checked against the cache. Expiry is checked on every hit.

The app's MongoDB role needs ``changeStream`` (with ``find``) on
``api_tokens`` (``devstack.mongod.app_role_privileges``).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from eventsvc.settings import Settings
from eventsvc.tokens import TokenInfo

log = logging.getLogger(__name__)

Document = dict[str, Any]

AWAIT_SECONDS = 0.5  # the change stream's getMore answers at least this often
STALE_AFTER_SECONDS = 2.0  # a stream silent for longer is not trusted
RETRY_SECONDS = 1.0  # wait before reopening a failed stream


@dataclass(frozen=True)
class _Entry:
    digest: str
    info: TokenInfo
    cached_until: float


def token_cache(settings: Settings) -> TokenCache | None:
    """The cache ``settings`` ask for; None when ``token_cache_seconds`` is 0."""
    if settings.token_cache_seconds == 0:
        return None
    return TokenCache(settings.token_cache_seconds, settings.token_cache_size)


class TokenCache:
    """Verified tokens of this worker; trusted only while the revocation watch is live."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._heard_at: float | None = None  # None: the watch is not live
        self._watcher: _Watcher | None = None
        self._waiters: dict[str, list[threading.Event]] = {}

    # --- used by TokenStore.authenticate -------------------------------------------------

    def get(self, token_id: str, digest: str) -> TokenInfo | None:
        """The cached info when this exact token was verified recently and the watch is live."""
        with self._lock:
            if not self._trusted():
                return None
            entry = self._entries.get(token_id)
            if entry is None or not hmac.compare_digest(entry.digest, digest):
                return None
            if entry.cached_until <= self._clock():
                del self._entries[token_id]
                return None
            self._entries.move_to_end(token_id)
            return entry.info

    def generation(self) -> int:
        """Take before reading a token record; pass to :meth:`put` after verifying it."""
        with self._lock:
            return self._generation

    def put(self, digest: str, info: TokenInfo, generation: int) -> None:
        """Keep a token verified from a record read after ``generation`` was taken.

        Not kept when any token record changed in between (the change may be
        this one's revocation), or when the watch is not live.
        """
        with self._lock:
            if generation != self._generation or not self._trusted():
                return
            self._entries[info.token_id] = _Entry(digest, info, self._clock() + self._ttl)
            self._entries.move_to_end(info.token_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def drop(self, token_id: str) -> None:
        """Forget a token at once (its record changed) and void verifications in flight."""
        with self._lock:
            self._generation += 1
            self._entries.pop(token_id, None)

    def changed(self, token_id: str) -> None:
        """(Watcher) The token's record changed: drop it and wake whoever waits for this news."""
        with self._lock:
            self._generation += 1
            self._entries.pop(token_id, None)
            waiters = self._waiters.pop(token_id, [])
        for waiter in waiters:
            waiter.set()

    def expect_change(self, token_id: str) -> threading.Event:
        """Register before changing a token; :meth:`wait_for_change` then waits for the watch."""
        waiter = threading.Event()
        with self._lock:
            self._waiters.setdefault(token_id, []).append(waiter)
        return waiter

    def wait_for_change(self, waiter: threading.Event) -> bool:
        """Wait (at most STALE_AFTER_SECONDS) until the watch reports the change.

        The revoking worker waits so that its answer means the change stream
        has carried the revocation: every other worker's stream was sent the
        same change. True when reported, or when this worker's watch is not
        live (its cache is not used; the other workers' watches still report it).
        """
        return not self.live or waiter.wait(STALE_AFTER_SECONDS)

    def forget(self, token_id: str, waiter: threading.Event) -> None:
        """Unregister a waiter from :meth:`expect_change` (reported or not)."""
        with self._lock:
            pending = self._waiters.get(token_id, [])
            if waiter in pending:
                pending.remove(waiter)
            if not pending:
                self._waiters.pop(token_id, None)

    def holds(self, token_id: str) -> bool:
        """Whether ``token_id`` is cached (for tests and diagnostics)."""
        with self._lock:
            return token_id in self._entries

    @property
    def live(self) -> bool:
        """Whether the cache is used: the revocation watch has answered recently."""
        with self._lock:
            return self._trusted()

    # --- the revocation watch ------------------------------------------------------------

    def watch(self, tokens: Collection[Document]) -> None:
        """Start the thread that drops changed tokens (once per worker, after the fork)."""
        if self._watcher is None:
            self._watcher = _Watcher(self, tokens)
            self._watcher.start()

    def stop(self) -> None:
        """Stop watching; the cache is not used from now on."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        self.lost_watch()

    def _trusted(self) -> bool:
        return self._heard_at is not None and self._clock() - self._heard_at < STALE_AFTER_SECONDS

    def opened_watch(self) -> None:
        """(Watcher) A new stream: changes before it are unknown, so nothing cached is kept."""
        with self._lock:
            self._forget_all()
            self._heard_at = self._clock()

    def heard(self) -> None:
        """(Watcher) The stream answered; after a silence too long to trust, start empty."""
        with self._lock:
            if not self._trusted():
                self._forget_all()
            self._heard_at = self._clock()

    def lost_watch(self) -> None:
        """(Watcher) The stream failed or was stopped: the cache is not used."""
        with self._lock:
            self._forget_all()
            self._heard_at = None

    def _forget_all(self) -> None:
        self._generation += 1
        self._entries.clear()


class _Watcher(threading.Thread):
    """Reads the token collection's change stream; reopens it after an error."""

    def __init__(self, cache: TokenCache, tokens: Collection[Document]) -> None:
        super().__init__(name="eventsvc-token-watch", daemon=True)
        self._cache = cache
        self._tokens = tokens
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=AWAIT_SECONDS * 4)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except PyMongoError as error:
                self._cache.lost_watch()
                log.warning(
                    "token revocation watch failed (%s); tokens are read from MongoDB", error
                )
                self._stopping.wait(RETRY_SECONDS)

    def _follow(self) -> None:
        pipeline = [{"$match": {"operationType": {"$ne": "insert"}}}]  # a new token changes none
        with self._tokens.watch(pipeline, max_await_time_ms=int(AWAIT_SECONDS * 1000)) as stream:
            self._cache.opened_watch()
            while not self._stopping.is_set() and stream.alive:
                change = stream.try_next()
                if change is not None:
                    self._apply(change)  # before heard(): never trusted with a change pending
                self._cache.heard()
        self._cache.lost_watch()

    def _apply(self, change: Document) -> None:
        token_id = change.get("documentKey", {}).get("_id")
        if isinstance(token_id, str):
            self._cache.changed(token_id)
        else:  # drop, rename, invalidate: the whole collection changed
            self._cache.lost_watch()
