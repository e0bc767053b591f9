"""MongoDB faults under write load: the primary killed, the whole replica set down and back.

Every acknowledged write must be in the database exactly once afterwards; while
there is no primary the API answers 503 problem+json quickly (bounded by the
store's timeouts, see docs/reliability.md "Durability settings"), never hangs.
"""

from __future__ import annotations

import signal
import time

from devstack.ha import RunningHaStack
from faults.conftest import client_urls, ready, wait_until
from faults.load import REQUEST_TIMEOUT_S, WriteLoad, check_against_database
from faults.results import record

DATABASE = "eventsvc"
WARM_UP_ACKS = 20
AFTER_FAULT_ACKS = 30


def test_primary_killed_writes_resume_after_the_election(healthy: RunningHaStack) -> None:
    stack = healthy
    primary = stack.replica_set.primary()
    with WriteLoad(
        client_urls(stack), str(stack.paths.ca_file), stack.tokens.cli, label="primary"
    ) as load:
        load.wait_for_acks(WARM_UP_ACKS)
        killed_at = time.monotonic()
        primary.kill(signal.SIGKILL)
        new_primary = stack.replica_set.primary()
        first_ack = load.wait_for_acks(1, after=killed_at)
        load.wait_for_acks(AFTER_FAULT_ACKS, after=killed_at)
    primary.start()
    with stack.replica_set.admin_client() as admin:
        verdict = check_against_database(load, admin, DATABASE)
    record(
        "mongodb-primary-killed",
        "kill -9 of the MongoDB primary",
        "tests/faults/test_mongodb_faults.py::test_primary_killed_writes_resume_after_the_election",
        load,
        verdict,
        first_ack - killed_at,
        notes=f"member {primary.index} killed, member {new_primary.index} elected",
    )
    assert new_primary.index != primary.index
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert load.stats.unexpected == []
    assert load.stats.replay_mismatches == 0
    assert load.stats.non_problem_503 == 0
    assert load.stats.replayed <= 3, "more answers lost than requests in flight (3 writers)"
    assert load.stats.max_latency_s < REQUEST_TIMEOUT_S, "a request hung"


def test_mongodb_down_then_back_readiness_follows_and_writes_recover(
    healthy: RunningHaStack,
) -> None:
    stack = healthy
    ca_file = str(stack.paths.ca_file)
    with WriteLoad(client_urls(stack), ca_file, stack.tokens.cli, label="alldown") as load:
        load.wait_for_acks(WARM_UP_ACKS)
        for member in stack.replica_set.members:
            member.kill(signal.SIGKILL)
        wait_until(
            lambda: not any(ready(api.url, ca_file) for api in stack.apis),
            30,
            "every instance's /readyz to say 503",
        )
        time.sleep(3)  # writers meet a database that is down, not one going down
        back_at = time.monotonic()
        for member in stack.replica_set.members:
            member.start()
        wait_until(
            lambda: all(ready(api.url, ca_file) for api in stack.apis),
            60,
            "every instance's /readyz to say ready again",
        )
        first_ack = load.wait_for_acks(1, after=back_at)
        load.wait_for_acks(AFTER_FAULT_ACKS, after=back_at)
    assert all(api.is_running for api in stack.apis), "an instance died instead of waiting"
    with stack.replica_set.admin_client() as admin:
        verdict = check_against_database(load, admin, DATABASE)
    record(
        "mongodb-all-down",
        "MongoDB entirely down (every member kill -9), then started again",
        "tests/faults/test_mongodb_faults.py::"
        "test_mongodb_down_then_back_readiness_follows_and_writes_recover",
        load,
        verdict,
        first_ack - back_at,
        notes="recovery measured from the restart of the members",
    )
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert load.stats.unexpected == []
    assert load.stats.replay_mismatches == 0
    assert load.stats.non_problem_503 == 0
    assert load.stats.max_latency_s < REQUEST_TIMEOUT_S, "a request hung"
