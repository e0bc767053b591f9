"""Hostile traffic at the edge, and a legitimate client measured while it runs.

Shared by tests/e2e/test_gateway_edge.py (which asserts behaviour: the legitimate
client keeps succeeding) and tests/perf/edge_attacks.py (which prints its
success rate and p99 latency during each attack against a baseline).

The attacker and the legitimate client come from two loopback addresses
(127.0.0.1 and 127.0.0.2), so per-address limits tell them apart as they would
two hosts on the internet.
"""

from __future__ import annotations

import select
import socket
import ssl
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

ATTACKER = "127.0.0.1"
LEGIT = "127.0.0.2"


class SourceAddressAdapter(HTTPAdapter):
    """Connections from a chosen local address (a second loopback address is another host)."""

    def __init__(self, source: str, **kwargs: Any) -> None:
        self._source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(source: str, ca_file: Path, token: str | None = None) -> requests.Session:
    session = requests.Session()
    adapter = SourceAddressAdapter(source, pool_connections=4, pool_maxsize=16)
    session.mount("https://", adapter)
    # Not from the environment: REQUESTS_CA_BUNDLE would override session.verify, and a
    # proxy variable would change the source address the gateway sees.
    session.trust_env = False
    session.verify = str(ca_file)
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


# --- The legitimate client ----------------------------------------------------------------


@dataclass
class LegitResult:
    """What a legitimate client saw: every status, every latency (seconds)."""

    statuses: Counter[int | str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def success_rate(self) -> float:
        return self.ok / self.total if self.total else 0.0

    def p(self, quantile: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[quantile - 1]

    def line(self, label: str) -> str:
        return (
            f"{label:<34} {self.total:>5} req  success {100 * self.success_rate:6.2f} %"
            f"  p50 {1000 * self.p(50):7.1f} ms  p99 {1000 * self.p(99):7.1f} ms"
        )


@contextmanager
def legit_client(
    base_url: str, ca_file: Path, token: str, *, interval_s: float = 0.05
) -> Iterator[LegitResult]:
    """Read the newest event every ``interval_s`` from 127.0.0.2 until the block ends."""
    result = LegitResult()
    stop = threading.Event()
    session = session_from(LEGIT, ca_file, token)

    def loop() -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                response = session.get(f"{base_url}/api/v1/events?limit=1", timeout=30)
                result.statuses[response.status_code] += 1
            except requests.RequestException as exc:
                result.statuses[type(exc).__name__] += 1
            result.latencies.append(time.monotonic() - began)
            stop.wait(max(0.0, interval_s - (time.monotonic() - began)))

    thread = threading.Thread(target=loop, name="legit-client", daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join(timeout=60)
        session.close()


# --- Attacks ------------------------------------------------------------------------------


def _tls_connect(url: str, ca_file: Path, source: str = ATTACKER) -> ssl.SSLSocket:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca_file))
    raw = socket.create_connection(
        (parts.hostname or "127.0.0.1", parts.port or 443), timeout=3, source_address=(source, 0)
    )
    return context.wrap_socket(raw, server_hostname="localhost")


@dataclass
class SlowResult:
    """Slow connections: how many were opened, and how many the server closed (and when)."""

    opened: int = 0
    closed_by_server: int = 0
    close_times_s: list[float] = field(default_factory=list)
    responses: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        last = f", last after {max(self.close_times_s):.1f} s" if self.close_times_s else ""
        return (
            f"{self.opened} opened, {self.closed_by_server} answered or closed by the server"
            f"{last}: {dict(self.responses)}"
        )


def slow_clients(
    url: str,
    ca_file: Path,
    *,
    connections: int,
    duration_s: float,
    request_head: bytes,
    drip: bytes,
    drip_every_s: float = 1.0,
) -> SlowResult:
    """Open ``connections`` TLS connections, send ``request_head``, then ``drip`` every second.

    Slowloris (``drip`` a header line, the head never ends) or a slow body
    (``drip`` a few body bytes after a complete head with a large
    Content-Length). Runs for ``duration_s`` and notes which connections
    the server closed or answered.
    """
    result = SlowResult()
    began = time.monotonic()
    open_sockets: list[ssl.SSLSocket] = []
    for _ in range(connections):
        if time.monotonic() - began > duration_s:
            break  # the server accepts too slowly: what is open is the attack
        try:
            conn = _tls_connect(url, ca_file)
            conn.sendall(request_head)
        except OSError:  # refused, or no TLS handshake within 3 s: the server is saturated
            result.responses["not accepted"] += 1
            continue
        conn.setblocking(False)
        open_sockets.append(conn)
    result.opened = len(open_sockets)
    next_drip = time.monotonic()
    while open_sockets and time.monotonic() - began < duration_s:
        readable, _, _ = select.select(open_sockets, [], [], 0.2)
        for conn in readable:
            if _answered_or_closed(conn, result, began):
                open_sockets.remove(conn)
        if time.monotonic() >= next_drip:
            for conn in list(open_sockets):
                try:
                    conn.send(drip)
                except (OSError, ssl.SSLError):
                    _closed(conn, result, began, "closed")
                    open_sockets.remove(conn)
            next_drip += drip_every_s
    for conn in open_sockets:
        conn.close()
    return result


def _answered_or_closed(conn: ssl.SSLSocket, result: SlowResult, began: float) -> bool:
    """Readable: an answer, an end of stream, or only TLS records (session tickets)."""
    try:
        data = conn.recv(4096)
    except ssl.SSLWantReadError:
        return False
    except (OSError, ssl.SSLError):
        data = b""
    status = data.split(b"\r\n", 1)[0].decode("latin-1")[:40] if data else "closed"
    _closed(conn, result, began, status)
    return True


def _closed(conn: ssl.SSLSocket, result: SlowResult, began: float, how: str) -> None:
    result.closed_by_server += 1
    result.close_times_s.append(time.monotonic() - began)
    result.responses[how] += 1
    conn.close()


def slowloris(url: str, ca_file: Path, *, connections: int, duration_s: float) -> SlowResult:
    """Many connections whose request headers never end (one more header line a second)."""
    head = b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slowloris\r\n"
    return slow_clients(
        url,
        ca_file,
        connections=connections,
        duration_s=duration_s,
        request_head=head,
        drip=b"X-Slow: 1\r\n",
    )


def slow_bodies(url: str, ca_file: Path, *, connections: int, duration_s: float) -> SlowResult:
    """Many POSTs announcing 60 kB and sending 16 bytes a second."""
    head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 60000\r\n\r\n"
    )
    return slow_clients(
        url,
        ca_file,
        connections=connections,
        duration_s=duration_s,
        request_head=head,
        drip=b"{" + b" " * 15,
    )


def flood(
    url: str, ca_file: Path, *, duration_s: float, threads: int = 6, path: str = "/readyz"
) -> Counter[int | str]:
    """As many requests as ``threads`` keep-alive connections can send, from 127.0.0.1."""
    statuses: Counter[int | str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def worker() -> None:
        session = session_from(ATTACKER, ca_file)
        seen: Counter[int | str] = Counter()
        while time.monotonic() < deadline:
            try:
                seen[session.get(f"{url}{path}", timeout=10).status_code] += 1
            except requests.RequestException as exc:
                seen[type(exc).__name__] += 1
        session.close()
        with lock:
            statuses.update(seen)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=duration_s + 30)
    return statuses


def oversized(url: str, ca_file: Path, *, duration_s: float) -> Counter[int | str]:
    """Alternating oversized headers (64 kB) and bodies (2 MB), from 127.0.0.1."""
    statuses: Counter[int | str] = Counter()
    session = session_from(ATTACKER, ca_file)
    deadline = time.monotonic() + duration_s
    big_body = b"x" * 2_000_000
    sends: list[Callable[[], requests.Response]] = [
        lambda: session.get(f"{url}/readyz", headers={"X-Big": "a" * 65_536}, timeout=10),
        lambda: session.post(f"{url}/api/v1/events", data=big_body, timeout=10),
    ]
    index = 0
    while time.monotonic() < deadline:
        try:
            statuses[sends[index % 2]().status_code] += 1
        except requests.RequestException as exc:
            statuses[type(exc).__name__] += 1
        index += 1
    session.close()
    return statuses
