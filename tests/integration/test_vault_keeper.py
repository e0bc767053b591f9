"""The LeaseKeeper against a real OpenBao, with TTLs of a few seconds.

A separate AppRole (``eventsvc-short``, same policy) gives 2 s tokens capped at
4 s, so one test sees renewal, the max-TTL cap and a second login. Certificates
are requested with a 3 s TTL so re-issue happens within the test.
"""

from __future__ import annotations

import logging
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from vault_support import Stack, assert_no_secret_in, start_stack

from devstack.openbao import deliver_wrapped_secret_id
from eventsvc.audit.signing import public_keys_from_transit, signature_ok
from eventsvc.vault.issued import MongoCredential, ServerTLS
from eventsvc.vault.keeper import Backoff, LeaseKeeper
from eventsvc.vault.session import VaultSession
from eventsvc.vault.status import STATUS_FILE_NAME, StatusFile, read_status
from eventsvc.vault.tokenfile import write_with_current_token
from eventsvc.vault.transit import CHECKPOINT_KEY, TRANSIT_MOUNT

SHORT_ROLE = "eventsvc-short"
RELOGIN_ROLE = "eventsvc-relogin"
"""6 s tokens capped at 8 s: the second login comes ~1 s before the first token would expire."""
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
    running.root.write_data(
        f"auth/approle/role/{RELOGIN_ROLE}",
        data={
            "token_policies": ["eventsvc-app"],
            "token_no_default_policy": True,
            "token_ttl": "6s",
            "token_max_ttl": "8s",
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


def test_a_signer_made_before_a_new_login_signs_and_anchors_with_the_new_token(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As a gunicorn worker forked before the lease keeper's re-login does.

    The signer and the anchor are made first (as the master makes them for
    the workers); the keeper then logs in again at the max TTL and revokes
    the old token. Both still work: they read the token file before each request.
    """
    caplog.set_level(logging.DEBUG)
    config = stack.config(tmp_path, approle_role=RELOGIN_ROLE)
    session = VaultSession.open(config)
    signer, anchor = session.checkpoint_signer(), session.checkpoint_anchor()
    assert session.token is not None
    first_accessor = session.token.accessor
    assert session.token_file.stat().st_mode & 0o777 == 0o600
    old_token = session.token_file.read_text(encoding="ascii").strip()
    assert signer.sign(b"before the new login").startswith("vault:v1:")
    assert config.wrapped_secret_id_file is not None
    deliver_wrapped_secret_id(stack.root, config.wrapped_secret_id_file, role_name=RELOGIN_ROLE)
    keeper = LeaseKeeper(session, backoff=FAST_RETRY)
    keeper.start()
    try:
        assert wait_for(
            lambda: session.token is not None and session.token.accessor != first_accessor, 15
        ), "no second login after the max TTL"
        keeper.stop()
        new_token = session.token_file.read_text(encoding="ascii").strip()
        assert new_token != old_token
        # revoke-self succeeded: the old token was revoked, not left to expire.
        assert "vault: replaced token revoked" in caplog.text
        old = hvac.Client(url=stack.bao.addr, token=old_token, verify=str(stack.bao.ca_file))
        with pytest.raises(hvac.exceptions.Forbidden):
            old.auth.token.lookup_self()

        signature = signer.sign(b"after the new login")
        key = stack.root.read(f"{TRANSIT_MOUNT}/keys/{CHECKPOINT_KEY}")["data"]
        assert signature_ok(b"after the new login", signature, public_keys_from_transit(key))
        writer = f"relogin-{secrets.token_hex(8)}"
        anchor.append({"writer_id": writer, "number": 1, "signature": signature})
        stored = stack.root.read(f"audit-anchors/data/eventsvc/{writer}/1")["data"]["data"]
        assert stored["signature"] == signature
        assert_no_secret_in(caplog.text, [old_token, new_token])
    finally:
        keeper.stop()
        session.shutdown()
    assert not session.token_file.exists()


def test_a_request_refused_on_a_replaced_token_is_retried_once_with_the_new_one(
    stack: Stack,
) -> None:
    """The keeper revokes the old token right after writing the new one: a worker
    that read the file just before gets a 403, and retries with the new token.
    A 403 on a token that has not changed is a real refusal: no retry hides it."""
    tokens = [stack.root.auth.token.create(policies=["eventsvc-app"], ttl="5m") for _ in (1, 2)]
    old, new = (
        hvac.Client(
            url=stack.bao.addr,
            token=created["auth"]["client_token"],
            verify=str(stack.bao.ca_file),
        )
        for created in tokens
    )
    old.auth.token.revoke_self()
    path = f"{TRANSIT_MOUNT}/sign/{CHECKPOINT_KEY}"
    data = {"input": "cmV0cnk="}
    handed: list[hvac.Client] = []

    def keeper_replaced_it() -> hvac.Client:
        handed.append(old if not handed else new)
        return handed[-1]

    signed = write_with_current_token(keeper_replaced_it, path, data)
    assert signed["data"]["signature"].startswith("vault:v1:")
    assert handed == [old, new]
    with pytest.raises(hvac.exceptions.Forbidden):
        write_with_current_token(lambda: old, path, data)


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
    status_file = session.runtime_dir / STATUS_FILE_NAME
    keeper = LeaseKeeper(
        session,
        on_server_tls=lambda tls: handed_over.set(),
        backoff=FAST_RETRY,
        status=StatusFile(status_file),
    )
    token = session.token_file.read_text(encoding="utf-8")
    own.bao.stop()
    keeper.start()
    try:
        assert wait_for(lambda: caplog.text.count("refresh failed, retry in") >= 3, 10)
        assert keeper.is_alive()
        assert not handed_over.is_set()
        assert "unreachable" in caplog.text
        found = read_status(status_file)
        assert found is not None
        assert not found.reachable, "the workers' /readyz would not know"
        assert found.last_error == "VaultUnavailable"
        assert stat.S_IMODE(status_file.stat().st_mode) == 0o600
        assert_no_secret_in(status_file.read_text(encoding="utf-8"), [token, own.bao.addr])
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
