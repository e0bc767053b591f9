"""The LeaseKeeper against a real OpenBao, with TTLs of a few seconds.

A separate AppRole (``eventsvc-short``, same policy) gives 2 s tokens capped at
4 s, so one test sees renewal, the max-TTL cap and a second login. Certificates
are requested with a 3 s TTL so re-issue happens within the test.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from vault_support import Stack, start_stack

from devstack.openbao import deliver_wrapped_secret_id
from eventsvc.vault.issued import MongoCredential, ServerTLS
from eventsvc.vault.keeper import Backoff, LeaseKeeper
from eventsvc.vault.session import VaultSession

SHORT_ROLE = "eventsvc-short"
FAST_RETRY = Backoff(initial_s=0.2, max_s=0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("vault-keeper"))
    running.root.write_data(
        f"auth/approle/role/{SHORT_ROLE}",
        data={
            "token_policies": ["eventsvc-app"],
            "token_no_default_policy": True,
            "token_ttl": "2s",
            "token_max_ttl": "4s",
            "secret_id_num_uses": 1,
            "secret_id_ttl": "5m",
        },
    )
    try:
        yield running
    finally:
        running.bao.stop()


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_token_is_renewed_then_replaced_by_a_new_login_at_max_ttl(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventsvc.vault")
    config = stack.config(tmp_path, approle_role=SHORT_ROLE)
    session = VaultSession.open(config)
    assert session.token is not None
    first_accessor = session.token.accessor
    # The orchestrator delivers the next wrapped secret_id before the max TTL.
    assert config.wrapped_secret_id_file is not None
    deliver_wrapped_secret_id(stack.root, config.wrapped_secret_id_file, role_name=SHORT_ROLE)
    keeper = LeaseKeeper(session, backoff=FAST_RETRY)
    keeper.start()
    try:
        assert wait_for(
            lambda: session.token is not None and session.token.accessor != first_accessor, 10
        ), "no second login after the max TTL"
        assert "token renewed" in caplog.text
        assert session.read("auth/token/lookup-self")["data"]["ttl"] > 0
    finally:
        keeper.stop()
        session.shutdown()


def test_certificates_are_reissued_before_expiry_and_handed_over(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = VaultSession.open(stack.config(tmp_path, certificate_ttl="3s"))
    first_mongo = session.issue_mongo_credential()
    first_tls = session.issue_server_tls()
    mongo_seen: list[MongoCredential] = []
    mongo_handed_at: list[float] = []

    def on_mongo_credential(credential: MongoCredential) -> None:
        mongo_handed_at.append(time.time())
        mongo_seen.append(credential)

    tls_seen: list[ServerTLS] = []

    def on_server_tls(tls: ServerTLS) -> None:
        tls_seen.append(tls)
        if len(tls_seen) == 1:
            raise RuntimeError("the caller's first reload fails")

    keeper = LeaseKeeper(
        session, on_mongo_credential=on_mongo_credential, on_server_tls=on_server_tls
    )
    keeper.start()
    try:
        assert wait_for(lambda: len(tls_seen) >= 2 and len(mongo_seen) >= 1, 10)
        assert keeper.is_alive(), "a failing callback must not stop the keeper"
    finally:
        keeper.stop()
        session.shutdown()
    new_mongo = mongo_seen[0]
    assert new_mongo.serial_number != first_mongo.serial_number  # type: ignore[union-attr]
    assert new_mongo.expires_at > first_mongo.expires_at  # type: ignore[union-attr]
    assert mongo_handed_at[0] < first_mongo.expires_at.timestamp(), "re-issued too late"  # type: ignore[union-attr]
    assert tls_seen[0].serial_number != first_tls.serial_number
    assert "credential callback failed" in caplog.text


def test_keeper_retries_with_backoff_while_vault_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = start_stack(tmp_path / "doomed")
    ca_copy = tmp_path / "vault-ca.pem"  # bao removes its own copy when it stops
    ca_copy.write_bytes(own.bao.ca_file.read_bytes())
    session = VaultSession.open(own.config(tmp_path, certificate_ttl="1s", ca_file=ca_copy))
    session.issue_server_tls()
    handed_over = threading.Event()
    keeper = LeaseKeeper(session, on_server_tls=lambda tls: handed_over.set(), backoff=FAST_RETRY)
    own.bao.stop()
    keeper.start()
    try:
        assert wait_for(lambda: caplog.text.count("refresh failed, retry in") >= 3, 10)
        assert keeper.is_alive()
        assert not handed_over.is_set()
        assert "unreachable" in caplog.text
    finally:
        started = time.monotonic()
        keeper.stop()
        assert time.monotonic() - started < 5, "stop must not wait for the backoff"
        session.shutdown()  # best effort: logs, does not raise
    assert not session.runtime_dir.exists()


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0), (500, 8.0)]:
        delays = {backoff.delay(attempt) for _ in range(20)}
        assert all(cap / 2 <= delay <= cap for delay in delays)
        assert len(delays) > 1, "no jitter"
