"""One highly available stack for the fault tests: OpenBao, a 3-member replica set, 2 API
instances and the gateway in front of them (health-checking them on /readyz).

Every test breaks something, measures, and repairs it; the ``healthy``
fixture checks (and, if a test failed half-way, restores) the whole stack
before each test, so the tests do not depend on their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest
import requests

from devstack.gateway import GatewayConfig
from devstack.ha import RunningHaStack, start_ha_stack
from devstack.paths import StackPaths

FAULT_API_ENV = {
    # One worker per instance: two instances are the redundancy under test, and the
    # machine running the suite may have two cores.
    "EVENTSVC_WORKERS": "1",
    # The load comes from one address and one token: not what the limits are for.
    "EVENTSVC_RATE_LIMIT_PER_ADDRESS": "100000/minute",
    "EVENTSVC_RATE_LIMIT_PER_TOKEN": "100000/minute",
}
HEAL_TIMEOUT_S = 60.0


@pytest.fixture(scope="package")  # stopped once tests/faults is done, not at the session's end
def ha_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHaStack]:
    stack = start_ha_stack(
        StackPaths(tmp_path_factory.mktemp("faults") / ".run"),
        members=3,
        instances=2,
        api_env=FAULT_API_ENV,
        gateway=GatewayConfig(),
    )
    try:
        yield stack
    finally:
        stack.stop()


def ready(url: str, ca_file: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", verify=ca_file, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition`` (bounded); return the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def healthy(ha_stack: RunningHaStack) -> RunningHaStack:
    """Every member and instance running, a primary elected, every instance ready."""
    for member in ha_stack.replica_set.members:
        member.start()
    ha_stack.replica_set.primary(timeout_s=HEAL_TIMEOUT_S)
    for index, api in enumerate(ha_stack.apis):
        if not api.is_running:
            ha_stack.restart_api(index)
    ca_file = str(ha_stack.paths.ca_file)
    wait_until(
        lambda: all(ready(api.url, ca_file) for api in ha_stack.apis),
        HEAL_TIMEOUT_S,
        "every API instance to be ready",
    )
    assert ha_stack.gateway is not None
    assert ha_stack.gateway.is_running
    wait_until(lambda: ready(ha_stack.url, ca_file), HEAL_TIMEOUT_S, "the gateway to be ready")
    return ha_stack


def client_urls(stack: RunningHaStack) -> Callable[[], Sequence[str]]:
    """Where the writers send requests: the gateway, as every client would."""
    return lambda: [stack.url]
