"""OpenBao unreachable across a scheduled certificate renewal, under write load.

The API instances get 90-second certificates (``EVENTSVC_VAULT_CERTIFICATE_TTL``),
so their lease keepers re-issue them 60 s after issue. OpenBao is paused
(SIGSTOP: it accepts connections and answers nothing, the worst kind of
outage) from 5 s before that renewal until 15 s after it (longer if an
instance's keeper has not yet seen a failed request: its timeout is 10 s): the
renewal fails, the instances keep serving on their current certificates and
token, their /readyz says "degraded" (200: they stay in rotation), and once
OpenBao answers again the keepers re-issue, before the old certificates expire,
and /readyz says "ok" again.

The dev server keeps everything in memory, so it cannot be stopped and started
again with its state: a pause is the outage it can survive.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devstack.gateway import GatewayConfig
from devstack.ha import RunningHaStack, start_ha_stack
from devstack.paths import StackPaths
from faults.conftest import FAULT_API_ENV, client_urls, wait_until
from faults.load import REQUEST_TIMEOUT_S, WriteLoad, check_against_database
from faults.results import record

DATABASE = "eventsvc"
CERTIFICATE_TTL_S = 90
RENEW_AFTER_S = CERTIFICATE_TTL_S * 2 / 3
PAUSE_BEFORE_RENEWAL_S = 5.0
PAUSE_AFTER_RENEWAL_S = 15.0
RESUME_BEFORE_EXPIRY_S = 12.0
"""OpenBao answers again at least this long before the first certificate expires."""
_VALID_UNTIL = re.compile(r"valid until (\S+Z)")


@pytest.fixture
def short_lived_stack(tmp_path: Path) -> Iterator[RunningHaStack]:
    stack = start_ha_stack(
        StackPaths(tmp_path / ".run"),
        members=1,
        instances=2,
        api_env={**FAULT_API_ENV, "EVENTSVC_VAULT_CERTIFICATE_TTL": f"{CERTIFICATE_TTL_S}s"},
        gateway=GatewayConfig(),
    )
    try:
        yield stack
    finally:
        stack.bao.process.send_signal(signal.SIGCONT)
        stack.stop()


def valid_until(url: str, ca_file: str) -> datetime | None:
    """When the instance's certificates expire, as its /readyz says (None: not ready)."""
    try:
        response = requests.get(f"{url}/readyz", verify=ca_file, timeout=2)
    except requests.RequestException:
        return None
    found = _VALID_UNTIL.search(response.json()["checks"]["certificates"])
    if response.status_code != 200 or found is None:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def readiness(url: str, ca_file: str) -> tuple[int, str, str]:
    """The instance's /readyz: HTTP status, top-level status, its Vault check ("" if none)."""
    try:
        response = requests.get(f"{url}/readyz", verify=ca_file, timeout=2)
        body = response.json()
    except (requests.RequestException, ValueError):
        return 0, "", ""
    return response.status_code, body["status"], body["checks"].get("vault", "")


def all_say(stack: RunningHaStack, ca_file: str, status: str) -> bool:
    return all(readiness(api.url, ca_file)[:2] == (200, status) for api in stack.apis)


def test_vault_paused_across_a_renewal_serving_continues_then_recovers(
    short_lived_stack: RunningHaStack,
) -> None:
    stack = short_lived_stack
    ca_file = str(stack.paths.ca_file)
    first = [valid_until(api.url, ca_file) for api in stack.apis]
    assert all(first), "an instance is not ready"
    expiries = [moment for moment in first if moment is not None]
    renewal = min(expiries).timestamp() - (CERTIFICATE_TTL_S - RENEW_AFTER_S)
    with WriteLoad(client_urls(stack), ca_file, stack.tokens.cli, label="vault") as load:
        time.sleep(max(0.0, renewal - PAUSE_BEFORE_RENEWAL_S - time.time()))
        paused_at = time.monotonic()
        stack.bao.process.send_signal(signal.SIGSTOP)
        time.sleep(PAUSE_BEFORE_RENEWAL_S + PAUSE_AFTER_RENEWAL_S)
        wait_until(
            lambda: all_say(stack, ca_file, "degraded"),
            max(1.0, min(expiries).timestamp() - RESUME_BEFORE_EXPIRY_S - time.time()),
            'every instance\'s /readyz to say "degraded" (200) while OpenBao is paused',
        )
        while_paused = [readiness(api.url, ca_file) for api in stack.apis]
        acked_while_paused = len(load.acknowledged_after(paused_at))
        still_the_old = [valid_until(api.url, ca_file) for api in stack.apis]
        paused_for_s = time.monotonic() - paused_at
        resumed_at = time.monotonic()
        stack.bao.process.send_signal(signal.SIGCONT)
        wait_until(
            lambda: all(
                (now := valid_until(api.url, ca_file)) is not None and now > old
                for api, old in zip(stack.apis, expiries, strict=True)
            ),
            min(expiries).timestamp() - time.time(),
            "every instance's new certificates before the old ones expire",
        )
        recovered_at = time.monotonic()
        ok_again_at = wait_until(
            lambda: all_say(stack, ca_file, "ok"), 30, 'every instance\'s /readyz to say "ok"'
        )
        load.wait_for_acks(20, after=recovered_at)
    with stack.replica_set.admin_client() as admin:
        verdict = check_against_database(load, admin, DATABASE)
    record(
        "vault-paused-across-renewal",
        "OpenBao unreachable (SIGSTOP) for at least 20 s across a scheduled certificate renewal",
        "tests/faults/test_vault_faults.py::"
        "test_vault_paused_across_a_renewal_serving_continues_then_recovers",
        load,
        verdict,
        recovered_at - resumed_at,
        notes=(
            f"{CERTIFICATE_TTL_S} s certificates; OpenBao paused {paused_for_s:.0f} s; "
            f"{acked_while_paused} writes acknowledged while OpenBao was paused (serving "
            'continued, /readyz 200 "degraded" on valid certificates, "ok" again '
            f"{ok_again_at - resumed_at:.1f} s after its return); recovery: from OpenBao's "
            "return to every instance's re-issued certificates"
        ),
    )
    assert acked_while_paused > 0, "serving stopped while Vault was away"
    assert still_the_old == first, "certificates changed while Vault was paused"
    for status_code, status, vault_check in while_paused:
        assert (status_code, status) == (200, "degraded")
        assert vault_check.startswith("unreachable since ")
        assert "; serving on current credentials until " in vault_check
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert load.stats.unexpected == []
    assert load.stats.max_latency_s < REQUEST_TIMEOUT_S, "a request hung"
