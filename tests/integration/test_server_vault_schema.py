"""The schema check on the Vault path: at start (exit 3), and in every worker after a reload.

The real stack runs (OpenBao, mongod, the API with a Vault login). MongoDB's
admin changes the schema behind the running server's back; the next worker
gunicorn forks (a reload: certificate rotation, or SIGHUP) refuses to serve,
and the whole server stops with status 3 and revokes its Vault token. A new
server started with the same Vault settings then exits 3 at start, with one
line, and leaves no token or file behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from devstack.api import api_settings, pick_api_port
from devstack.openbao import deliver_wrapped_secret_id
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from eventsvc.audit.record import AUDIT
from eventsvc.vault.tokenfile import TOKEN_FILE_NAME

RELOAD_EXIT_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        StackPaths(tmp_path_factory.mktemp("schema") / ".run"),
        api_port=pick_api_port(0),
        api_env={"EVENTSVC_WORKERS": "1"},
    )
    try:
        yield running
    finally:
        running.stop()


def test_a_worker_reloaded_after_a_schema_change_refuses_to_serve(stack: RunningStack) -> None:
    """The TTL index that would erase the trail, added while the server runs, then a reload."""
    (runtime,) = stack.paths.api_runtime_dir.glob("eventsvc-vault-*")
    token = (runtime / TOKEN_FILE_NAME).read_text(encoding="ascii").strip()
    database = api_settings(stack.api_env).mongodb_database
    with stack.mongod.admin_client() as admin:
        admin[database][AUDIT].create_index("time", expireAfterSeconds=10**9, name="erase")
    assert stack.api.is_running  # the running workers checked at their start, not since

    os.kill(stack.api.process.pid, signal.SIGHUP)  # what every certificate re-issue does
    try:
        status = stack.api.process.wait(timeout=RELOAD_EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail("the server kept serving after a reload on a changed schema")
    assert status == 3
    log_text = stack.api.log_file.read_text(encoding="utf-8")
    refusals = [line for line in log_text.splitlines() if "refuses to serve" in line]
    assert len(refusals) == 1, log_text[-3000:]
    assert "schema error" in refusals[0]
    assert "audit: unexpected index erase" in refusals[0]
    assert "Traceback" not in log_text
    # It failed closed: the lease keeper revoked the token and removed the files.
    old = hvac.Client(url=stack.bao.addr, token=token, verify=str(stack.bao.ca_file))
    with pytest.raises(hvac.exceptions.Forbidden):
        old.auth.token.lookup_self()
    assert not runtime.exists()
    assert token not in log_text


def test_a_vault_start_on_a_missing_collection_exits_3_with_one_line(
    stack: RunningStack, tmp_path: Path
) -> None:
    """Start-up with Vault: login, certificates, then the check; exit 3, nothing left behind."""
    database = api_settings(stack.api_env).mongodb_database
    with stack.mongod.admin_client() as admin:
        admin[database]["api_tokens"].drop()
    root = stack.root_client()
    wrapped = tmp_path / "secret-id.wrapped"
    deliver_wrapped_secret_id(
        root, wrapped, approle_mount=stack.boot.approle_mount, role_name=stack.boot.role_name
    )
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = stack.api_env | {
        "HOME": str(tmp_path),
        "EVENTSVC_BIND": f"127.0.0.1:{pick_api_port(0)}",
        "EVENTSVC_RUNTIME_DIR": str(runtime),
        "EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE": str(wrapped),
    }
    accessors_before = set(root.list("auth/token/accessors")["data"]["keys"])

    result = subprocess.run(
        [sys.executable, "-m", "eventsvc.server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert result.returncode == 3, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("eventsvc: ")]
    assert len(ours) == 1, result.stderr
    assert ours[0].startswith("eventsvc: schema error: ")
    assert "api_tokens: collection missing" in ours[0]
    assert "eventsvc migrate" in ours[0]
    assert "Traceback" not in result.stderr
    # The login's token was revoked and its certificate and token files removed.
    assert set(root.list("auth/token/accessors")["data"]["keys"]) <= accessors_before
    assert list(runtime.iterdir()) == []
