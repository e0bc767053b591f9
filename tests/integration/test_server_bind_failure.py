"""A server that logged in to Vault but cannot bind its port leaves no live credential behind.

gunicorn gives up on a taken address by exiting from inside its start-up,
after our Vault login and certificate issue. The real stack (OpenBao,
mongod, one API) runs; a second server is started on the first one's port.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.api import pick_api_port
from devstack.openbao import deliver_wrapped_secret_id
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        StackPaths(tmp_path_factory.mktemp("bind") / ".run"), api_port=pick_api_port(0)
    )
    try:
        yield running
    finally:
        running.stop()


def test_a_taken_port_revokes_the_token_and_removes_the_files(
    stack: RunningStack, tmp_path: Path
) -> None:
    root = stack.root_client()
    wrapped = tmp_path / "secret-id.wrapped"
    deliver_wrapped_secret_id(
        root, wrapped, approle_mount=stack.boot.approle_mount, role_name=stack.boot.role_name
    )
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = stack.api_env | {  # the running API's address: taken
        "HOME": str(tmp_path),
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

    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("eventsvc: ")]
    assert ours == [
        f"eventsvc: could not start serving on {env['EVENTSVC_BIND']} (address in use?); "
        "the Vault token and certificates were revoked and the files removed"
    ], result.stderr
    assert "Traceback" not in result.stderr
    # The login's token was revoked: no token of that start is left in Vault
    # (the wrapping token was used up by the login, hence a subset).
    assert set(root.list("auth/token/accessors")["data"]["keys"]) <= accessors_before
    # Its key and certificate files are gone with their directory.
    assert list(runtime.iterdir()) == []
    assert stack.api.is_running  # the first server was never disturbed
