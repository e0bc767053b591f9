"""Load test: the real server (gunicorn, HTTPS, 2 workers) on a real mongod, under N client threads.

Each scenario runs for a fixed time; the table gives requests/s, p50/p95
latency and every non-2xx answer or client error, and ratios between
scenarios of the same run: what auth, the rate limiter and the audited
transaction cost per request. Scenarios alternate over several rounds so
background load hits them alike. The client threads share the machine with
the server and mongod, so the no-DB baseline is bounded by the client too.
Nothing here asserts on time.

    make loadtest                       # about 40 s
    make loadtest LOADTEST_ARGS=--quick
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import requests

from eventsvc.store import NewEvent
from eventsvc.tokens import SCOPES
from perf.stack import APP_USERNAME, PERF_CONTEXT, PerfStack, perf_stack
from support import ApiServer, start_api_server

SEEDED_EVENTS = 200
SERVER_WORKERS = 2
REQUEST_TIMEOUT_S = 10


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    method: str
    path: str  # "{id}" is replaced by a random seeded event id per request
    authenticated: bool = False
    body: dict[str, object] | None = None


SCENARIOS = [
    Scenario("healthz", "GET /healthz (no auth, no DB)", "GET", "/healthz"),
    Scenario("readyz", "GET /readyz (no auth, DB ping)", "GET", "/readyz"),
    Scenario(
        "get",
        "GET /api/v1/events/{id} (auth, 1 read)",
        "GET",
        "/api/v1/events/{id}",
        authenticated=True,
    ),
    Scenario(
        "post",
        "POST /api/v1/events (auth, txn + audit)",
        "POST",
        "/api/v1/events",
        authenticated=True,
        body={"name": "loadtest", "attributes": {"site": "lab-1"}},
    ),
]

# (case, baseline, what the difference is); keys index SCENARIOS.
COMPARISONS = [
    ("readyz", "healthz", "a MongoDB round trip"),
    ("get", "readyz", "auth + rate limiter + read (vs no auth)"),
    ("post", "readyz", "auth + rate limiter + transaction + audit record (vs no auth)"),
    ("post", "get", "transaction + audit record (both authenticated)"),
]


@dataclass
class Tally:
    """What the clients saw of one scenario, summed over rounds."""

    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, percent: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100)[percent - 1]

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 300) + sum(
            self.failures.values()
        )


def run_round(
    server: ApiServer, scenario: Scenario, event_ids: list[str], threads: int, seconds: float
) -> Tally:
    """``threads`` clients (one requests.Session each) send ``scenario`` for ``seconds``."""
    tallies = [Tally() for _ in range(threads)]
    ready = threading.Barrier(threads + 1)
    deadline = [float("inf")]  # set once every client is connected
    headers = server.headers if scenario.authenticated else {}
    # verify= per request: a Session's own verify is overridden by REQUESTS_CA_BUNDLE.
    verify = str(server.ca_file)

    def send(session: requests.Session) -> requests.Response:
        path = scenario.path.replace("{id}", random.choice(event_ids))
        return session.request(
            scenario.method,
            server.base_url + path,
            json=scenario.body,
            headers=headers,
            verify=verify,
            timeout=REQUEST_TIMEOUT_S,
        )

    def client(tally: Tally) -> None:
        with requests.Session() as session:
            try:
                send(session)  # warm-up: the TLS handshake is not what we measure
            except requests.RequestException as error:
                tally.failures[f"warm-up {type(error).__name__}"] += 1
            ready.wait()
            while time.perf_counter() < deadline[0]:
                started = time.perf_counter()
                try:
                    status = send(session).status_code
                except requests.RequestException as error:
                    tally.failures[type(error).__name__] += 1
                    continue
                tally.latencies_ms.append((time.perf_counter() - started) * 1000)
                tally.statuses[status] += 1
                tally.requests += 1

    workers = [threading.Thread(target=client, args=(tally,)) for tally in tallies]
    for worker in workers:
        worker.start()
    ready.wait()
    started = time.perf_counter()
    deadline[0] = started + seconds
    for worker in workers:
        worker.join()
    total = Tally(seconds=time.perf_counter() - started)
    for tally in tallies:
        total.requests += tally.requests
        total.latencies_ms += tally.latencies_ms
        total.statuses += tally.statuses
        total.failures += tally.failures
    return total


def merge(into: Tally, tally: Tally) -> None:
    into.requests += tally.requests
    into.seconds += tally.seconds
    into.latencies_ms += tally.latencies_ms
    into.statuses += tally.statuses
    into.failures += tally.failures


def start_server(stack: PerfStack) -> ApiServer:
    token = stack.tokens.create("loadtest", sorted(SCOPES), timedelta(hours=1), PERF_CONTEXT)
    return start_api_server(
        stack.workdir / "api",
        stack.settings,
        username=APP_USERNAME,
        password=stack.app_password,
        token_pepper=stack.token_pepper,
        audit_key=stack.audit_key,
        token=token.token,
        workers=SERVER_WORKERS,
    )


def report(results: dict[str, Tally], server: ApiServer) -> str:
    by_key = {scenario.key: scenario for scenario in SCENARIOS}
    baseline = results["healthz"].per_second
    header = (
        f"{'scenario':<42} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'errors':>6} "
        f"{'requests':>8} {'vs healthz':>10}"
    )
    lines = [header, "-" * len(header)]
    for scenario in SCENARIOS:
        tally = results[scenario.key]
        lines.append(
            f"{scenario.label:<42} {tally.per_second:>7,.0f} {tally.percentile(50):>7.1f} "
            f"{tally.percentile(95):>7.1f} {tally.errors:>6} {tally.requests:>8} "
            f"{'x' + format(tally.per_second / baseline, '.2f'):>10}"
        )
    lines += ["", "Cost per request (requests/s ratio and p50 difference, same run, same server):"]
    for case, base, difference in COMPARISONS:
        case_tally, base_tally = results[case], results[base]
        ratio = case_tally.per_second / base_tally.per_second
        extra = case_tally.percentile(50) - base_tally.percentile(50)
        lines.append(
            f"  {by_key[case].label.split(' (')[0]} vs {by_key[base].label.split(' (')[0]}: "
            f"x{ratio:.2f}, p50 {extra:+.1f} ms  <- {difference}"
        )
    lines.append("")
    for scenario in SCENARIOS:
        tally = results[scenario.key]
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
        failures = ", ".join(f"{name}: {n}" for name, n in tally.failures.items())
        lines.append(f"  {scenario.key:<8} answers {answers}{'; ' + failures if failures else ''}")
    if any(tally.errors for tally in results.values()):
        lines += ["", f"server log tail ({server.log_file}):", server.log_text()[-2000:]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 clients, 1.5 s per scenario")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=6.0, help="per scenario, all rounds")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args(argv)
    clients, seconds, rounds = (
        (4, 1.5, 1) if args.quick else (args.clients, args.seconds, args.rounds)
    )

    started = time.perf_counter()
    print(
        f"eventsvc loadtest: {clients} client threads, {seconds:g} s per scenario "
        f"in {rounds} round(s), gunicorn gthread x{SERVER_WORKERS} workers over HTTPS; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    with perf_stack() as stack:
        event_ids = [
            stack.store.create(NewEvent("loadtest", None, {}), PERF_CONTEXT).event.id
            for _ in range(SEEDED_EVENTS)
        ]
        server = start_server(stack)
        try:
            results = {scenario.key: Tally() for scenario in SCENARIOS}
            for _ in range(rounds):
                for scenario in SCENARIOS:
                    tally = run_round(server, scenario, event_ids, clients, seconds / rounds)
                    merge(results[scenario.key], tally)
            print(report(results, server))
        finally:
            server.stop()
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
