"""The whole local stack from nothing (real bao, mongod, gunicorn), as ``make up`` builds it.

One stack for the module, started through ``devstack.stack``. The
secret_id the API unwraps is chosen by the test (AppRole custom-secret-id), so
the test knows every secret in play and can look for it in every log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pymongo
import pytest
import requests
from cryptography import x509
from pymongo.errors import OperationFailure, PyMongoError

from devstack import api as api_module
from devstack.api import pick_api_port
from devstack.devtoken import mint_dev_token
from devstack.errors import StackError
from devstack.openbao import deliver_wrapped_secret_id
from devstack.paths import StackPaths
from devstack.reports import sign_report, write_report_public_key
from devstack.stack import RunningStack, start_stack
from secgate.signing import verify_report
from support import write_test_pki


class KnownSecrets:
    """The secrets an observer of the stack can know, collected while it starts.

    The secret_id and the API's own Vault token are not among them: only the
    API ever sees them (tests/integration/test_vault.py checks them in-process).
    """

    def __init__(self) -> None:
        self.values: list[str] = []

    def record_wrapping_token(
        self, client: hvac.Client, target_file: Path, *, approle_mount: str, role_name: str
    ) -> Path:
        """The real delivery; the wrapping token is remembered before the API spends it."""
        delivered = deliver_wrapped_secret_id(
            client, target_file, approle_mount=approle_mount, role_name=role_name
        )
        self.values.append(delivered.read_text(encoding="ascii").strip())
        return delivered


@pytest.fixture(scope="module")
def known() -> KnownSecrets:
    return KnownSecrets()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, known: KnownSecrets) -> Iterator[RunningStack]:
    paths = StackPaths(tmp_path_factory.mktemp("stack") / ".run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_module, "deliver_wrapped_secret_id", known.record_wrapping_token)
        running = start_stack(paths, api_port=pick_api_port(0), api_env={"EVENTSVC_WORKERS": "2"})
    try:
        root = running.root_client()
        pepper = root.read("kv/data/eventsvc/token-pepper")["data"]["data"]["token_pepper"]
        audit_key = root.read("kv/data/eventsvc/audit-hmac")["data"]["data"]["audit_hmac_key"]
        known.values.extend([pepper, audit_key])
        yield running
    finally:
        running.stop()


def cli_config(stack: RunningStack) -> dict[str, Any]:
    with stack.paths.cli_config.open("rb") as handle:
        return tomllib.load(handle)


def api_runtime_files(stack: RunningStack) -> Path:
    """The API's private runtime directory (one eventsvc-vault-* directory per process)."""
    (directory,) = stack.paths.api_runtime_dir.glob("eventsvc-vault-*")
    return directory


def test_create_and_list_events_over_verified_https(stack: RunningStack) -> None:
    config = cli_config(stack)
    headers = {"Authorization": f"Bearer {config['token']}"}
    ca = str(stack.paths.ca_file)
    assert config["url"] == stack.api.url
    created = requests.post(
        f"{stack.api.url}/api/v1/events",
        json={"name": "from the stack test"},
        headers=headers,
        verify=ca,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    listed = requests.get(f"{stack.api.url}/api/v1/events", headers=headers, verify=ca, timeout=10)
    assert listed.status_code == 200
    assert created.json()["id"] in [event["id"] for event in listed.json()["items"]]


def test_cli_config_is_private_and_state_holds_no_secret(stack: RunningStack) -> None:
    assert stack.paths.cli_config.stat().st_mode & 0o077 == 0
    state_text = repr(stack.state())
    assert cli_config(stack)["token"] not in state_text
    assert stack.bao.root_token not in state_text
    assert not stack.paths.wrapped_secret_id_file.exists()  # spent, and removed


def test_app_logs_in_to_mongodb_as_its_certificate_subject(stack: RunningStack) -> None:
    issued = x509.load_pem_x509_certificate(
        (api_runtime_files(stack) / "mongo-client.pem").read_bytes()
    )
    assert issued.subject.rfc4514_string() == stack.app_subject
    with stack.mongod.admin_client() as admin:
        operations = admin.admin.command({"currentOp": 1, "$all": True})["inprog"]
    app_users = {
        (user["user"], user["db"])
        for operation in operations
        if operation.get("appName") == "eventsvc"
        for user in operation.get("effectiveUsers", [])
    }
    assert app_users == {(stack.app_subject, "$external")}


def test_mongodb_refuses_plaintext_and_unauthenticated_clients(stack: RunningStack) -> None:
    host, port = stack.mongod.host, stack.mongod.port
    plain: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        host, port, directConnection=True, serverSelectionTimeoutMS=1500
    )
    with plain, pytest.raises(PyMongoError):
        plain.admin.command("ping")
    assert stack.mongod.tls is not None
    anonymous: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        host,
        port,
        directConnection=True,
        tls=True,
        tlsCAFile=str(stack.mongod.tls.ca_file),
        serverSelectionTimeoutMS=3000,
    )
    with anonymous, pytest.raises(OperationFailure, match="requires authentication"):
        anonymous["eventsvc"]["events"].find_one()


def test_a_server_certificate_from_another_ca_is_refused(
    stack: RunningStack, tmp_path: Path
) -> None:
    _other_ca, cert_file, key_file = write_test_pki(tmp_path / "other")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        accepted = threading.Thread(target=_handshake_once, args=(listener, server_context))
        accepted.start()
        with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
            requests.get(
                f"https://127.0.0.1:{port}/readyz", verify=str(stack.paths.ca_file), timeout=5
            )
        accepted.join(5)


def _handshake_once(listener: socket.socket, context: ssl.SSLContext) -> None:
    connection, _ = listener.accept()
    with connection, pytest.raises(ssl.SSLError):
        context.wrap_socket(connection, server_side=True)


def test_the_api_is_not_trusted_through_another_ca(stack: RunningStack, tmp_path: Path) -> None:
    other_ca, _cert, _key = write_test_pki(tmp_path / "other")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{stack.api.url}/readyz", verify=str(other_ca), timeout=5)


def test_no_secret_in_the_api_environment_or_command_line(
    stack: RunningStack, known: KnownSecrets
) -> None:
    pid = stack.api.process.pid
    exposed = Path(f"/proc/{pid}/environ").read_bytes() + Path(f"/proc/{pid}/cmdline").read_bytes()
    for index, secret in enumerate([stack.bao.root_token, *known.values]):
        assert secret.encode() not in exposed, f"secret #{index} is in the API's environ/argv"
    assert b"VAULT_TOKEN" not in exposed


def test_no_secret_in_any_log(stack: RunningStack, known: KnownSecrets) -> None:
    runtime = api_runtime_files(stack)
    private_keys = [
        (runtime / "mongo-client.pem").read_text().split("-----END CERTIFICATE-----")[1].strip(),
        (runtime / "server-key.pem").read_text().strip(),
    ]
    assert stack.mongod.tls is not None
    mongod_key = stack.mongod.tls.server_pem_file.read_text().split("-----END CERTIFICATE-----")[1]
    all_secrets = [
        stack.bao.root_token,
        *known.values,
        cli_config(stack)["token"],
        stack.mongod._root_password.reveal(),
        *private_keys,
        mongod_key.strip(),
    ]
    logs = [
        path
        for path in stack.paths.root.rglob("*")
        if path.is_file() and path.suffix in (".log", ".out", ".console", ".json")
    ]
    assert stack.paths.api_log in logs
    for log_file in logs:
        text = log_file.read_text(encoding="utf-8", errors="replace")
        for index, secret in enumerate(all_secrets):
            assert secret, f"secret #{index} is empty: the test would prove nothing"
            assert secret not in text, f"secret #{index} appears in {log_file}"


# --- acting as operator and auditor on the local stack (issue #9 item 5) -----------------


def _config(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def test_dev_token_mints_through_the_api_with_the_operator_token(stack: RunningStack) -> None:
    operator = stack.paths.operator_config
    assert operator.stat().st_mode & 0o077 == 0
    ca = str(stack.paths.ca_file)
    operator_headers = {"Authorization": f"Bearer {_config(operator)['token']}"}
    events = requests.get(
        f"{stack.api.url}/api/v1/events", headers=operator_headers, verify=ca, timeout=10
    )
    assert events.status_code == 403  # tokens:admin only

    written = Path(mint_dev_token(stack.paths, ["audit:read"]))
    assert written == stack.paths.dev_token_config
    assert written.stat().st_mode & 0o077 == 0
    headers = {"Authorization": f"Bearer {_config(written)['token']}"}
    audit = requests.get(f"{stack.api.url}/api/v1/audit", headers=headers, verify=ca, timeout=10)
    assert audit.status_code == 200
    assert '"token.create"' in audit.text  # the dev token's own creation is audited
    denied = requests.get(f"{stack.api.url}/api/v1/events", headers=headers, verify=ca, timeout=10)
    assert denied.status_code == 403
    assert _config(written)["token"] not in repr(stack.state())


def test_auditor_vault_token_reads_the_app_secret_and_nothing_else(stack: RunningStack) -> None:
    path = stack.paths.auditor_vault_token
    assert path.stat().st_mode & 0o077 == 0
    token = path.read_text(encoding="ascii").strip()
    assert token != stack.bao.root_token
    auditor = hvac.Client(url=stack.bao.addr, token=token, verify=str(stack.bao.ca_file))
    assert auditor.lookup_token()["data"]["policies"] == ["default", "eventsvc-auditor"]
    with pytest.raises(hvac.exceptions.Forbidden):
        auditor.write_data("kv/data/eventsvc/app", data={"data": {"audit_hmac_key": "forged"}})
    with pytest.raises(hvac.exceptions.Forbidden):
        auditor.auth.token.create(policies=["eventsvc-app"])


def test_dev_token_without_a_stack_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="start the stack first"):
        mint_dev_token(StackPaths(tmp_path), ["audit:read"])


def test_the_stack_signs_a_report_and_the_auditor_key_verifies_it(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The local signing identity: a sign-only token, the public key read as auditor."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    summary = bundle / "summary.md"
    summary.write_text("## secgate: PASSED\n", encoding="utf-8")
    digest = hashlib.sha256(summary.read_bytes()).hexdigest()
    manifest = {"run_id": "r", "commit": "c", "artifacts": {"summary.md": digest}}
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    sign_report(stack.paths, bundle, stack.bao.addr, stack.bao.ca_file)
    key = write_report_public_key(stack.paths, stack.bao.addr, stack.bao.ca_file, tmp_path / "k")
    checked = verify_report(bundle, key.read_bytes())
    assert checked.ok, checked.problems
    assert any("signature checked" in note for note in checked.notes)
    summary.write_text("## secgate: PASSED (edited)\n", encoding="utf-8")
    assert not verify_report(bundle, key.read_bytes()).ok

    token_file = stack.paths.report_signer_token
    assert token_file.stat().st_mode & 0o077 == 0
    signer = hvac.Client(
        url=stack.bao.addr, token=token_file.read_text().strip(), verify=str(stack.bao.ca_file)
    )
    assert signer.lookup_token()["data"]["policies"] == ["default", "eventsvc-report-signer"]
    checkpoint = {"input": base64.b64encode(b"a forged checkpoint").decode()}
    with pytest.raises(hvac.exceptions.Forbidden):  # a report signature is no checkpoint's
        signer.write_data("transit/sign/eventsvc-audit-checkpoint", data=checkpoint)
