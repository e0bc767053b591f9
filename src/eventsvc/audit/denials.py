"""Denied requests (401, 403, 429) as audit evidence, without letting a flood grow the trail.

Every denial is evidence, but one majority-journaled record per refused
request would let anyone without a token make us write to disk as fast as
they can send. So denials are aggregated per **(source, reason, route)** in
fixed windows of ``window_seconds`` (60 s by default):

- the *first* denial of a window is written at once (``count`` 1), so a
  single probe is visible in the trail immediately;
- the rest of the window is only counted in memory and written as *one*
  summary record (``count`` = how many) when the window has closed, at the
  latest when :meth:`DenialRecorder.flush` runs (a thread started by the
  server calls it every few seconds, and the worker calls it with
  ``everything=True`` when it exits).

**The bound.** Per process, at most 2 records per (source, reason, route)
per window, and at most ``max_keys`` keys are tracked at once; a denial
that would need a new key beyond that is counted under the source ``*``
(overflow) instead. So a window writes at most ``2 * (max_keys + reasons *
routes)`` records per process, whatever the request rate, and memory holds
at most ``max_keys`` small entries plus the overflow keys. Sources are the
actor (``token:<id>``) when the caller authenticated, else the client
address; reasons and routes come from a fixed vocabulary (the route
*template*, never the raw path).

What is lost: a process killed with SIGKILL loses the counts of its open
windows (never the first record of each). The counts are evidence of
volume, not a second rate limiter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from pymongo.errors import PyMongoError

from eventsvc.audit.log import AuditLog
from eventsvc.domain import RequestContext

log = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_MAX_KEYS = 10_000
OVERFLOW_SOURCE = "*"


@dataclass(frozen=True)
class DenialKey:
    """What denials are aggregated by."""

    source: str  # "token:<id>..." or the client address
    reason: str  # e.g. "401 invalid_token", "403 insufficient_scope", "429 rate limit"
    route: str  # "POST /api/v1/events": method and route template


@dataclass
class _Window:
    """One open window of a key: when it started, how many denials since the first."""

    started_at: float
    last_context: RequestContext
    unwritten: int = 0


class DenialRecorder:
    """Writes denial records through ``audit``, aggregated per key and window (see module doc).

    Thread-safe: a lock guards the table of windows and is never held during I/O.
    An audit outage is logged, never turned into an error for the caller.
    """

    def __init__(
        self,
        audit: AuditLog,
        *,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_seconds <= 0 or max_keys < 1:
            raise ValueError("window_seconds must be positive and max_keys at least 1")
        self._audit = audit
        self._window_seconds = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[DenialKey, _Window] = {}

    def record(self, key: DenialKey, context: RequestContext) -> None:
        """Count one denial; write it now if it opens a window for its key."""
        now = self._clock()
        closed: list[tuple[DenialKey, _Window]] = []
        with self._lock:
            if key not in self._windows and len(self._windows) >= self._max_keys:
                key = replace(key, source=OVERFLOW_SOURCE)
                context = replace(context, actor="anonymous", client_address=OVERFLOW_SOURCE)
            window = self._windows.get(key)
            if window is not None and now - window.started_at >= self._window_seconds:
                closed.append((key, self._windows.pop(key)))
                window = None
            if window is None:
                self._windows[key] = _Window(started_at=now, last_context=context)
            else:
                window.unwritten += 1
                window.last_context = context
        self._write_summaries(closed)
        if window is None:
            detail = f"{key.reason}; first of a {self._window_seconds:.0f} s window"
            self._write(key, context, 1, detail)

    def flush(self, *, everything: bool = False) -> None:
        """Write the summary of every closed window (of every window with ``everything``)."""
        now = self._clock()
        with self._lock:
            due = [
                key
                for key, window in self._windows.items()
                if everything or now - window.started_at >= self._window_seconds
            ]
            closed = [(key, self._windows.pop(key)) for key in due]
        self._write_summaries(closed)

    def _write_summaries(self, closed: list[tuple[DenialKey, _Window]]) -> None:
        for key, window in closed:
            if window.unwritten:
                detail = f"{key.reason}; {window.unwritten} more in the same window"
                self._write(key, window.last_context, window.unwritten, detail)

    def _write(self, key: DenialKey, context: RequestContext, count: int, detail: str) -> None:
        try:
            self._audit.append_denied(context, key.route, detail, count=count)
        except PyMongoError:
            log.exception("could not write the audit record of %d denied request(s)", count)


def start_denial_flushes(recorder: DenialRecorder, interval_seconds: float) -> threading.Thread:
    """Write closed windows' summaries every ``interval_seconds`` in a daemon thread."""

    def run() -> None:
        while True:
            time.sleep(interval_seconds)
            try:
                recorder.flush()
            except Exception:
                log.exception("writing denial summaries failed; retrying")

    thread = threading.Thread(target=run, name="audit-denials", daemon=True)
    thread.start()
    return thread
