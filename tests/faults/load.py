"""Concurrent writers for the fault tests, and the check of what they were told against MongoDB.

Each writer thread creates events one logical write at a time: a fresh
``Idempotency-Key`` per write, the same key (and the same body) on every retry
after a 503, a 502/504 from a gateway, a 409 "in progress" or a connection
error, as a careful client would. Every request has a bounded timeout and
every write a bounded deadline, so nothing here can hang; every request opens
a new verified TLS connection (no stale pooled connection to confuse a fault
with a client artefact).

What the writers were told is checked against the database with
:func:`check_against_database`: every acknowledged write must be there exactly
once (lost = 0) and no key may have produced two events (duplicated = 0).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymongo
import requests

RETRYABLE_STATUS = frozenset({409, 502, 503, 504})
REQUEST_TIMEOUT_S = 10.0
"""The client's bound on one request: a request that takes longer counts as a hang."""
WRITE_DEADLINE_S = 90.0
"""How long one logical write is retried before the writer gives up on it (unacknowledged)."""
RETRY_PAUSE_S = 0.2
MAX_WRITES_PER_THREAD = 5000
GATEWAY_NO_BACKEND = "no available server"
"""Traefik's 503 body when no server of the service passes its health check."""


@dataclass
class Outcome:
    """One logical write: its key and, once acknowledged, the event id the API returned."""

    key: str
    event_id: str | None = None
    acknowledged_at: float | None = None
    sent_at: float | None = None
    """When the request that was acknowledged was sent."""
    attempts: int = 0


@dataclass
class LoadStats:
    """What the writers saw, request by request (times are ``time.monotonic()``)."""

    statuses: Counter[str] = field(default_factory=Counter)
    max_latency_s: float = 0.0
    max_error_latency_s: float = 0.0
    """The slowest answer that was not a success: how long a client waited to be told 'no'."""
    non_problem_503: int = 0
    """503 answers that were neither the API's problem+json nor the gateway's "no healthy
    instance" answer."""
    gateway_no_backend: int = 0
    """503 from the gateway itself: every instance was out of rotation (/readyz not 200)."""
    unexpected: list[str] = field(default_factory=list)
    failed_in_flight: list[tuple[float, str]] = field(default_factory=list)
    """Requests that failed after they were sent (reset, read timeout), with when they started."""
    replay_mismatches: int = 0
    replayed: int = 0
    """201s with ``Idempotent-Replayed: true``: an earlier attempt had committed, but its
    answer never reached the client (lost in flight, or a 5xx after the commit)."""


class WriteLoad:
    """``threads`` writers POSTing events until :meth:`stop`; use as a context manager."""

    def __init__(
        self,
        urls: Callable[[], Sequence[str]],
        ca_file: str,
        token: str,
        *,
        threads: int = 3,
        label: str = "fault",
    ) -> None:
        self._urls = urls
        self._ca_file = ca_file
        self._headers = {"Authorization": f"Bearer {token}"}
        self._threads_wanted = threads
        self.run_id = f"{label}-{secrets.token_hex(4)}"
        self.outcomes: list[Outcome] = []
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._round_robin = itertools.count()

    # --- control -----------------------------------------------------------------
    def __enter__(self) -> WriteLoad:
        for index in range(self._threads_wanted):
            thread = threading.Thread(target=self._writer, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """No new logical write starts; the ones under way finish (bounded by their deadline)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(WRITE_DEADLINE_S + REQUEST_TIMEOUT_S + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a writer did not stop"

    # --- what happened -----------------------------------------------------------
    @property
    def attempted(self) -> int:
        with self._lock:
            return len(self.outcomes)

    @property
    def acknowledged(self) -> list[Outcome]:
        with self._lock:
            return [outcome for outcome in self.outcomes if outcome.event_id is not None]

    def acknowledged_after(self, moment: float) -> list[Outcome]:
        """Writes whose acknowledged request was sent after ``moment`` (not merely answered)."""
        return [o for o in self.acknowledged if (o.sent_at or 0.0) > moment]

    def wait_for_acks(self, count: int, after: float = 0.0, timeout_s: float = 60.0) -> float:
        """Wait (bounded) until ``count`` writes were acknowledged after ``after``; return when."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            acked = sorted(o.acknowledged_at or 0.0 for o in self.acknowledged_after(after))
            if len(acked) >= count:
                return acked[count - 1]
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} writes acknowledged in {timeout_s:.0f} s")

    # --- one writer --------------------------------------------------------------
    def _writer(self, index: int) -> None:
        for number in range(MAX_WRITES_PER_THREAD):
            if self._stop.is_set():
                return
            outcome = Outcome(key=f"{self.run_id}-{index}-{number}")
            with self._lock:
                self.outcomes.append(outcome)
            self._write(outcome)

    def _write(self, outcome: Outcome) -> None:
        body = {"name": f"fault load {outcome.key}", "attributes": {"write": outcome.key}}
        headers = {**self._headers, "Idempotency-Key": outcome.key}
        deadline = time.monotonic() + WRITE_DEADLINE_S
        while time.monotonic() < deadline:
            outcome.attempts += 1
            urls = self._urls()
            url = urls[next(self._round_robin) % len(urls)]
            if self._attempt(url, body, headers, outcome):
                return
            time.sleep(RETRY_PAUSE_S)

    def _attempt(
        self, url: str, body: dict[str, Any], headers: dict[str, str], outcome: Outcome
    ) -> bool:
        """One request; True when acknowledged (or given up as not retryable)."""
        started = time.monotonic()
        try:
            response = requests.post(
                f"{url}/api/v1/events",
                json=body,
                headers=headers,
                verify=self._ca_file,
                timeout=(3.0, REQUEST_TIMEOUT_S),
            )
        except requests.ConnectionError as exc:
            self._record_error(started, type(exc).__name__, in_flight=_was_sent(exc))
            return False
        except requests.Timeout as exc:
            self._record_error(started, type(exc).__name__, in_flight=True)
            return False
        latency = time.monotonic() - started
        with self._lock:
            self.stats.statuses[str(response.status_code)] += 1
            self.stats.max_latency_s = max(self.stats.max_latency_s, latency)
        if response.status_code == 201:
            event_id = str(response.json()["id"])
            with self._lock:
                if response.headers.get("Idempotent-Replayed") == "true":
                    self.stats.replayed += 1
                if outcome.event_id is not None and outcome.event_id != event_id:
                    self.stats.replay_mismatches += 1
                outcome.event_id = event_id
                outcome.acknowledged_at = time.monotonic()
                outcome.sent_at = started
            return True
        with self._lock:
            self.stats.max_error_latency_s = max(self.stats.max_error_latency_s, latency)
            if response.status_code == 503:
                self._classify_503(response)
        if response.status_code in RETRYABLE_STATUS:
            return False
        with self._lock:
            self.stats.unexpected.append(f"{response.status_code} {response.text[:200]}")
        return True  # not retryable: the write stays unacknowledged

    def _classify_503(self, response: requests.Response) -> None:
        if "problem+json" in response.headers.get("Content-Type", ""):
            return
        if response.text.strip() == GATEWAY_NO_BACKEND:
            self.stats.gateway_no_backend += 1
        else:
            self.stats.non_problem_503 += 1

    def _record_error(self, started: float, kind: str, *, in_flight: bool) -> None:
        latency = time.monotonic() - started
        with self._lock:
            self.stats.statuses[kind] += 1
            self.stats.max_latency_s = max(self.stats.max_latency_s, latency)
            self.stats.max_error_latency_s = max(self.stats.max_error_latency_s, latency)
            if in_flight:
                self.stats.failed_in_flight.append((started, kind))


def _was_sent(error: requests.ConnectionError) -> bool:
    """False when the connection was never made (refused, or TLS never set up): safe to retry
    anywhere; True when it broke after the request may have reached the server."""
    text = repr(error)
    never_connected = ("NewConnectionError", "Connection refused", "ConnectTimeout")
    return not any(marker in text for marker in never_connected)


@dataclass(frozen=True)
class Verdict:
    """What the database holds for a load's writes."""

    attempted: int
    acknowledged: int
    lost: list[str]
    duplicated: list[str]
    written_unacknowledged: int
    """Writes the client was never told about that are in the database once (allowed)."""


def check_against_database(
    load: WriteLoad, admin: pymongo.MongoClient[Any], database: str
) -> Verdict:
    """Count each of the load's keys in ``events``: acknowledged must be 1, any must be <= 1."""
    events = admin[database]["events"]
    with load._lock:
        keys = [outcome.key for outcome in load.outcomes]
    counts: dict[str, list[str]] = {}
    for document in events.find({"attributes.write": {"$in": keys}}, {"attributes.write": 1}):
        counts.setdefault(document["attributes"]["write"], []).append(str(document["_id"]))
    acknowledged = load.acknowledged
    lost = [
        outcome.key
        for outcome in acknowledged
        if outcome.event_id not in counts.get(outcome.key, [])
    ]
    duplicated = [key for key, ids in counts.items() if len(ids) > 1]
    acked_keys = {outcome.key for outcome in acknowledged}
    return Verdict(
        attempted=load.attempted,
        acknowledged=len(acknowledged),
        lost=lost,
        duplicated=duplicated,
        written_unacknowledged=sum(1 for key in counts if key not in acked_keys),
    )
