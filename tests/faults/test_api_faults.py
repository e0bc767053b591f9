"""API instance faults under write load, through the gateway: one instance killed, one stopped.

The gateway health-checks the instances on /readyz and sends requests only to
those that pass; until the check notices a dead instance, the gateway sends a
request its port refused to the other one (``retry-unreached``,
docs/gateway.md). A request the instance had received is not sent again: it
fails at the gateway (502) and the writer retries it with the same
Idempotency-Key, so nothing is lost or written twice. A write whose answer was
lost in flight shows up as a replay (``Idempotent-Replayed: true``) when its
retry arrives.
"""

from __future__ import annotations

import os
import signal
import time

from devstack.ha import RunningHaStack
from faults.conftest import client_urls, ready, wait_until
from faults.load import REQUEST_TIMEOUT_S, WriteLoad, check_against_database
from faults.results import record

DATABASE = "eventsvc"
WARM_UP_ACKS = 20
AFTER_FAULT_ACKS = 40


def test_an_instance_killed_the_gateway_routes_around_it(healthy: RunningHaStack) -> None:
    stack = healthy
    victim = stack.apis[1]
    ca_file = str(stack.paths.ca_file)
    with WriteLoad(client_urls(stack), ca_file, stack.tokens.cli, label="apikill") as load:
        load.wait_for_acks(WARM_UP_ACKS)
        killed_at = time.monotonic()
        os.killpg(victim.process.pid, signal.SIGKILL)  # master, workers and lease keeper
        victim.process.wait(timeout=10)
        first_ack = load.wait_for_acks(1, after=killed_at)
        load.wait_for_acks(AFTER_FAULT_ACKS, after=killed_at)
        survivor_ready = ready(stack.apis[0].url, ca_file)
    with stack.replica_set.admin_client() as admin:
        verdict = check_against_database(load, admin, DATABASE)
    failed = load.stats.statuses["502"] + load.stats.statuses["504"]
    record(
        "api-instance-killed",
        "one API instance killed (kill -9 of its process group)",
        "tests/faults/test_api_faults.py::test_an_instance_killed_the_gateway_routes_around_it",
        load,
        verdict,
        first_ack - killed_at,
        notes=(
            f"{failed} requests failed at the gateway (502/504), the writers retried them: "
            f"those the instance had received (in flight at the kill; {load.stats.replayed} "
            "of them had committed); requests its port refused before the health check "
            "(every 2 s) took it out were sent to the other instance by the gateway"
        ),
    )
    assert survivor_ready
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert load.stats.unexpected == []
    assert load.stats.replay_mismatches == 0
    assert load.stats.max_latency_s < REQUEST_TIMEOUT_S, "a request hung"
    assert load.stats.replayed <= 3, "more answers lost than requests in flight (3 writers)"
    stack.restart_api(1)


def test_sigterm_to_an_instance_finishes_its_in_flight_requests(healthy: RunningHaStack) -> None:
    stack = healthy
    victim = stack.apis[0]
    ca_file = str(stack.paths.ca_file)
    with WriteLoad(client_urls(stack), ca_file, stack.tokens.cli, label="apiterm") as load:
        load.wait_for_acks(WARM_UP_ACKS)
        stopped_at = time.monotonic()
        victim.process.send_signal(signal.SIGTERM)
        exit_status = victim.process.wait(timeout=60)
        first_ack = load.wait_for_acks(1, after=stopped_at)
        load.wait_for_acks(AFTER_FAULT_ACKS, after=stopped_at)
    with stack.replica_set.admin_client() as admin:
        verdict = check_against_database(load, admin, DATABASE)
    failed = load.stats.statuses["502"] + load.stats.statuses["504"]
    record(
        "api-instance-sigterm",
        "SIGTERM to one API instance (graceful stop)",
        "tests/faults/test_api_faults.py::test_sigterm_to_an_instance_finishes_its_in_flight_requests",
        load,
        verdict,
        first_ack - stopped_at,
        notes=(
            f"exit status {exit_status}; {load.stats.replayed} answers lost in flight; "
            f"{failed} requests failed at the gateway (502), the writers retried them; "
            "requests the stopping instance refused before the health check took it out "
            "were sent to the other instance by the gateway"
        ),
    )
    assert exit_status == 0
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert load.stats.unexpected == []
    assert load.stats.max_latency_s < REQUEST_TIMEOUT_S, "a request hung"
    assert load.stats.replayed == 0, "an in-flight request's answer was lost"
    stack.restart_api(0)
    wait_until(lambda: ready(stack.apis[0].url, ca_file), 60, "the instance back")
