"""A worker forked before the lease keeper's re-login signs and anchors with the new token.

The whole stack runs with a copy of vault/ whose service AppRole gives
30-second tokens capped at 40 s (instead of a periodic token), so the lease
keeper renews once, then logs in again ~33 s after the start, and revokes
the old token. One gunicorn worker and long-lived certificates: no reload
happens, so the worker that signs afterwards is the one forked at the start,
with the first token in its memory.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
import requests
import yaml
from click.testing import CliRunner
from pymongo.database import Database

from devstack.api import api_settings, pick_api_port
from devstack.openbao import deliver_wrapped_secret_id
from devstack.paths import BOOTSTRAP_FILE, StackPaths
from devstack.stack import RunningStack, start_stack
from eventsvc.audit.export import export
from eventsvc.audit.record import AUDIT, AUDIT_CHECKPOINTS, Document
from eventsvc.cli import cli
from eventsvc.vault.tokenfile import TOKEN_FILE_NAME

TOKEN_TTL = "30s"
TOKEN_MAX_TTL = "40s"
RELOGIN_TIMEOUT_S = 60.0


def short_token_definition(directory: Path) -> Path:
    """A copy of vault/ whose service AppRole issues 30 s tokens, 40 s at most."""
    vault_dir = directory / "vault"
    shutil.copytree(BOOTSTRAP_FILE.parent, vault_dir)
    definition = vault_dir / BOOTSTRAP_FILE.name
    content = yaml.safe_load(definition.read_text(encoding="utf-8"))
    role = content["approle"]["roles"]["eventsvc"]
    role.pop("token_period")
    role |= {"token_ttl": TOKEN_TTL, "token_max_ttl": TOKEN_MAX_TTL}
    definition.write_text(yaml.safe_dump(content), encoding="utf-8")
    return definition


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("relogin")
    running = start_stack(
        StackPaths(workdir / ".run"),
        api_port=pick_api_port(0),
        api_env={"EVENTSVC_WORKERS": "1"},
        definition=short_token_definition(workdir),
    )
    try:
        yield running
    finally:
        running.stop()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def worker_pids(stack: RunningStack) -> set[int]:
    """The master's children except the lease keeper process."""
    master = stack.api.process.pid
    children = {
        int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()
    }
    log_text = stack.api.log_file.read_text(encoding="utf-8")
    keeper = log_text.split("lease keeper runs in process ", 1)[1].split()[0].strip('",')
    return children - {int(keeper)}


def token_file(stack: RunningStack) -> Path:
    (directory,) = stack.paths.api_runtime_dir.glob("eventsvc-vault-*")
    return directory / TOKEN_FILE_NAME


def create_event(stack: RunningStack, name: str) -> str:
    with stack.paths.cli_config.open("rb") as handle:
        token = tomllib.load(handle)["token"]
    response = requests.post(
        f"{stack.api.url}/api/v1/events",
        json={"name": name},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(stack.paths.ca_file),
        timeout=15,
    )
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


def test_a_worker_from_before_the_relogin_signs_and_anchors_with_the_new_token(
    stack: RunningStack, tmp_path: Path
) -> None:
    root = stack.root_client()
    # The orchestrator's job before the max TTL: the next login's wrapped secret_id.
    deliver_wrapped_secret_id(
        root,
        stack.paths.wrapped_secret_id_file,
        approle_mount=stack.boot.approle_mount,
        role_name=stack.boot.role_name,
    )
    handoff = token_file(stack)
    assert handoff.stat().st_mode & 0o777 == 0o600
    old_token = handoff.read_text(encoding="ascii").strip()
    workers = worker_pids(stack)
    assert len(workers) == 1

    wait_for(
        lambda: handoff.read_text(encoding="ascii").strip() != old_token,
        RELOGIN_TIMEOUT_S,
        "the lease keeper's second login",
    )
    # revoke-self succeeded: the old token was revoked, not merely left to expire.
    wait_for(
        lambda: "vault: replaced token revoked" in stack.api.log_file.read_text(encoding="utf-8"),
        5,
        "the old token's revocation",
    )
    new_token = handoff.read_text(encoding="ascii").strip()
    old = hvac.Client(url=stack.bao.addr, token=old_token, verify=str(stack.bao.ca_file))
    with pytest.raises(hvac.exceptions.Forbidden):
        old.auth.token.lookup_self()
    assert worker_pids(stack) == workers, "a reload would hide the bug: the worker must be old"

    event_id = create_event(stack, "after the re-login")
    assert stack.api.stop() == 0  # the worker signs and anchors its heads at exit
    log_text = stack.api.log_file.read_text(encoding="utf-8")
    assert "not anchored" not in log_text
    assert old_token not in log_text
    assert new_token not in log_text

    database_name = api_settings(stack.api_env).mongodb_database
    with stack.mongod.admin_client() as admin:
        database: Database[Document] = admin[database_name]
        record = database[AUDIT].find_one({"action": "event.create", "target": event_id})
        assert record is not None
        writer = str(record["chain"]).split("/")[0]
        final = database[AUDIT_CHECKPOINTS].find_one({"writer_id": writer, "reason": "exit"})
        assert final is not None, "the worker could not sign after the re-login"
        assert final["heads"][record["chain"]]["sequence"] >= record["sequence"]
        lines = [json.dumps(line, default=str) for line in export(database, None, None)]
    anchored = root.read(f"audit-anchors/data/eventsvc/{writer}/{final['number']}")
    assert anchored is not None, "the worker could not anchor after the re-login"
    assert anchored["data"]["data"]["signature"] == final["signature"]

    exported = tmp_path / "audit.jsonl"
    exported.write_text("\n".join(lines) + "\n", encoding="utf-8")
    auditor = {
        "VAULT_ADDR": stack.bao.addr,
        "VAULT_TOKEN": stack.paths.auditor_vault_token.read_text(encoding="ascii").strip(),
        "VAULT_CACERT": str(stack.bao.ca_file),
    }
    result = CliRunner().invoke(
        cli, ["audit", "verify", "--file", str(exported), "--anchors"], env=auditor
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"anchor: writer {writer}: last anchored checkpoint {final['number']} at" in (
        result.stdout
    )
    assert not handoff.exists(), "the token file outlived the server"
