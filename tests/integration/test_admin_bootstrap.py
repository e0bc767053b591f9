"""The first admin token through Vault, against a real OpenBao and the real mongod.

``eventsvc token bootstrap`` (operator token, policy eventsvc-bootstrap-admin)
→ KV holds only the digest → the service (AppRole, policy eventsvc-app)
imports it → the token authenticates with tokens:admin through the API. The
plaintext token is in no KV value, no log record and no MongoDB document.
Also: the auditor's Vault token gives ``audit verify`` its key, and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from click.testing import CliRunner, Result
from vault_support import Stack, assert_no_secret_in, capture_everything, start_stack

from devstack.mongod import RunningMongod
from eventsvc.app import create_app
from eventsvc.audit.export import export
from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AuditEntry
from eventsvc.audit.signing import LocalCheckpointSigner, public_key_pem
from eventsvc.bootstrap import BootstrapInvalid, BootstrapRecord, import_bootstrap_token
from eventsvc.cli import cli
from eventsvc.domain import RequestContext
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokens import TokenRejected, TokenStore
from eventsvc.vault.errors import VaultPermissionDenied
from eventsvc.vault.session import VaultSession

BOOTSTRAP_PATH = "eventsvc/bootstrap-token"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("vault"))
    try:
        yield running
    finally:
        running.bao.stop()


def person_token(stack: Stack, *policies: str) -> str:
    """A short-lived token for a person, with the default policy (lookup-self)."""
    response = stack.root.auth.token.create(policies=list(policies), ttl="10m")
    token: str = response["auth"]["client_token"]
    return token


def vault_env(stack: Stack, token: str) -> dict[str, str]:
    return {
        "VAULT_ADDR": stack.bao.addr,
        "VAULT_TOKEN": token,
        "VAULT_CACERT": str(stack.bao.ca_file),
    }


def eventsvc(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)


def app_secret(stack: Stack, name: str) -> dict[str, str]:
    """``kv/eventsvc/<name>`` read with the root token."""
    response = stack.root.secrets.kv.v2.read_secret_version(
        f"eventsvc/{name}", mount_point="kv", raise_on_deleted_version=True
    )
    data: dict[str, str] = response["data"]["data"]
    return data


def clear_bootstrap_record(stack: Stack) -> None:
    stack.root.secrets.kv.v2.delete_metadata_and_all_versions(BOOTSTRAP_PATH, mount_point="kv")


@pytest.fixture
def service_session(stack: Stack, tmp_path: Path) -> Iterator[VaultSession]:
    """The service's own Vault session: AppRole, policy eventsvc-app."""
    session = VaultSession.open(stack.config(tmp_path))
    try:
        yield session
    finally:
        session.shutdown()


@pytest.fixture
def vault_tokens(stack: Stack, store: EventStore, audit_log: AuditLog) -> TokenStore:
    """Token records in the test mongod, checked with the pepper Vault holds."""
    return TokenStore(
        store.database, app_secret(stack, "token-pepper")["token_pepper"].encode(), audit_log
    )


def test_bootstrap_import_authenticate_and_no_plaintext_anywhere(
    stack: Stack,
    service_session: VaultSession,
    vault_tokens: TokenStore,
    settings: Settings,
    store: EventStore,
    audit_log: AuditLog,
    mongod: RunningMongod,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_everything(caplog)
    clear_bootstrap_record(stack)
    assert import_bootstrap_token(service_session, vault_tokens) == "absent"

    env = vault_env(stack, person_token(stack, "eventsvc-bootstrap-admin"))
    result = eventsvc("token", "bootstrap", "--owner", "ops@example.org", "--json", env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    shown = json.loads(result.stdout)
    token = shown["token"]
    assert token.startswith(f"evt_{shown['token_id']}_")
    assert shown["scopes"] == ["tokens:admin"]
    assert "shown once" in result.stderr

    # KV holds the record, not the token.
    stored = stack.root.secrets.kv.v2.read_secret_version(
        BOOTSTRAP_PATH, mount_point="kv", raise_on_deleted_version=True
    )
    assert set(stored["data"]["data"]) == {"token_id", "digest", "owner", "scopes", "expires_at"}
    assert_no_secret_in(json.dumps(stored), [token, token.split("_", 2)[2]])

    # The service imports it, once; a restart changes nothing.
    assert import_bootstrap_token(service_session, vault_tokens) == "imported"
    assert import_bootstrap_token(service_session, vault_tokens) == "already-present"

    info = vault_tokens.authenticate(token)
    assert info.scopes == frozenset({"tokens:admin"})
    assert info.owner == "ops@example.org"
    assert info.created_by == "vault-bootstrap"
    app = create_app(settings, Services(events=store, tokens=vault_tokens, audit=audit_log))
    listing = app.test_client().get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200, listing.get_data(as_text=True)
    assert shown["token_id"] in {item["id"] for item in listing.get_json()["items"]}

    # Nowhere else: not in any log record, not in any MongoDB document.
    assert_no_secret_in(caplog.text, [token])
    with mongod.admin_client() as admin:
        database = admin[settings.mongodb_database]
        for name in database.list_collection_names():
            dumped = json.dumps(list(database[name].find()), default=str)
            assert_no_secret_in(dumped, [token, token.split("_", 2)[2]])
        document = database["api_tokens"].find_one({"_id": shown["token_id"]})
    assert document is not None
    assert document["digest"] == stored["data"]["data"]["digest"]

    # Revoked, it stays revoked however often the service restarts.
    vault_tokens.revoke(shown["token_id"], RequestContext(actor="token:bootstraptest01"))
    assert import_bootstrap_token(service_session, vault_tokens) == "already-present"
    with pytest.raises(TokenRejected):
        vault_tokens.authenticate(token)


def test_a_second_bootstrap_cannot_replace_the_first(stack: Stack) -> None:
    clear_bootstrap_record(stack)
    env = vault_env(stack, person_token(stack, "eventsvc-bootstrap-admin"))
    first = eventsvc("token", "bootstrap", "--owner", "first", env=env)
    assert first.exit_code == 0, first.output
    second = eventsvc("token", "bootstrap", "--owner", "second", env=env)
    assert second.exit_code == 1
    assert second.stdout == ""
    assert second.stderr.startswith(
        "error: vault refused to write kv/data/eventsvc/bootstrap-token"
    )
    assert "a bootstrap token is already there" in second.stderr
    stored = stack.root.secrets.kv.v2.read_secret_version(
        BOOTSTRAP_PATH, mount_point="kv", raise_on_deleted_version=True
    )
    assert stored["data"]["data"]["owner"] == "first"


def test_bootstrap_needs_its_policy_and_a_verified_https_vault(stack: Stack) -> None:
    clear_bootstrap_record(stack)
    operator = vault_env(stack, person_token(stack, "eventsvc-operator"))
    denied = eventsvc("token", "bootstrap", "--owner", "x", env=operator)
    assert denied.exit_code == 1
    assert "permission denied" in denied.stderr
    assert len(denied.stderr.splitlines()) == 1

    auditor = vault_env(stack, person_token(stack, "eventsvc-auditor"))
    assert eventsvc("token", "bootstrap", "--owner", "x", env=auditor).exit_code == 1
    with pytest.raises(hvac.exceptions.InvalidPath):
        stack.root.secrets.kv.v2.read_secret_version(
            BOOTSTRAP_PATH, mount_point="kv", raise_on_deleted_version=True
        )

    good = vault_env(stack, person_token(stack, "eventsvc-bootstrap-admin"))
    plain = {**good, "VAULT_ADDR": stack.bao.addr.replace("https://", "http://")}
    assert eventsvc("token", "bootstrap", "--owner", "x", env=plain).exit_code == 2
    no_token = {**good, "VAULT_TOKEN": ""}
    assert (
        "VAULT_TOKEN is not set"
        in eventsvc("token", "bootstrap", "--owner", "x", env=no_token).stderr
    )
    no_ca = {**good, "VAULT_CACERT": ""}  # the system store does not trust the test CA
    untrusted = eventsvc("token", "bootstrap", "--owner", "x", env=no_ca)
    assert untrusted.exit_code == 1
    assert "TLS verification failed" in untrusted.stderr
    bad_scope = eventsvc("token", "bootstrap", "--owner", "x", "--scope", "root", env=good)
    assert bad_scope.exit_code == 2


def test_malformed_record_stops_the_import(
    stack: Stack, service_session: VaultSession, vault_tokens: TokenStore
) -> None:
    clear_bootstrap_record(stack)
    stack.root.secrets.kv.v2.create_or_update_secret(
        BOOTSTRAP_PATH,
        secret={"token_id": "abc", "digest": "0" * 64, "owner": "x", "scopes": ["events:read"]},
        mount_point="kv",
    )
    try:
        with pytest.raises(BootstrapInvalid):
            import_bootstrap_token(service_session, vault_tokens)
    finally:
        clear_bootstrap_record(stack)


def test_record_without_admin_scope_or_too_far_expiry_is_refused() -> None:
    good = {
        "token_id": "a" * 16,
        "digest": "0" * 64,
        "owner": "ops",
        "scopes": ["tokens:admin"],
        "expires_at": datetime.now(UTC).isoformat(),
    }
    assert BootstrapRecord.from_kv(good).owner == "ops"
    for change in (
        {"scopes": ["events:read"]},
        {"expires_at": "2999-01-01T00:00:00+00:00"},
        {"expires_at": "2030-01-01T00:00:00"},
        {"owner": "a\nb"},
    ):
        with pytest.raises(BootstrapInvalid):
            BootstrapRecord.from_kv({**good, **change})


def test_the_service_policy_cannot_write_the_bootstrap_record(
    service_session: VaultSession,
) -> None:
    with pytest.raises(VaultPermissionDenied):
        service_session.write(f"kv/data/{BOOTSTRAP_PATH}", {"data": {"token_id": "x"}})


def test_auditor_verifies_with_the_keys_from_vault(
    stack: Stack, mongod: RunningMongod, service_session: VaultSession, tmp_path: Path
) -> None:
    """The service signs checkpoints through transit with its own token; the auditor's
    token gives `audit verify` the HMAC key and the public key, and nothing else."""
    key = app_secret(stack, "audit-hmac")["audit_hmac_key"].encode()
    with mongod.admin_client() as admin:
        admin.drop_database("eventsvc_vault_audit")
        database = admin["eventsvc_vault_audit"]
        audit = AuditLog(database, key, service_session.checkpoint_signer())
        audit.ensure_schema()
        for number in range(3):
            audit.append(
                AuditEntry(
                    actor="anonymous",
                    action="request.denied",
                    target=None,
                    outcome="denied",
                    before=None,
                    after=None,
                    client_address="192.0.2.1",
                    request_id=f"r{number}",
                    trace_id=None,
                )
            )
        audit.checkpoint()
        lines = [json.dumps(line) for line in export(database, None, None)]
        admin.drop_database("eventsvc_vault_audit")
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n")

    auditor_token = person_token(stack, "eventsvc-auditor")
    env = vault_env(stack, auditor_token)
    result = eventsvc("audit", "verify", "--file", str(path), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.startswith("ok: 1 chain(s), 3 record(s), 1 checkpoint(s)")
    signed = [json.loads(line) for line in lines if '"checkpoint"' in line]
    assert signed[0]["signature"].startswith("vault:v1:")

    # A public key file of another key: the transit-signed checkpoint no longer verifies.
    other = tmp_path / "other.pem"
    other.write_text(public_key_pem(LocalCheckpointSigner.generate().public_keys()))
    forged_view = eventsvc(
        "audit", "verify", "--file", str(path), "--checkpoint-key", str(other), env=env
    )
    assert forged_view.exit_code == 1
    assert "bad-checkpoint" in forged_view.stdout

    # That token reads the audit key and nothing else (the matrix in
    # test_vault_policy_matrix.py covers every policy; this is the CLI's view).
    auditor = hvac.Client(url=stack.bao.addr, token=auditor_token, verify=str(stack.bao.ca_file))
    forbidden_calls: list[Callable[[], object]] = [
        lambda: auditor.secrets.kv.v2.read_secret_version(
            "eventsvc/mongodb", mount_point="kv", raise_on_deleted_version=True
        ),
        lambda: auditor.secrets.kv.v2.read_secret_version(
            "eventsvc/token-pepper", mount_point="kv", raise_on_deleted_version=True
        ),
        lambda: auditor.secrets.kv.v2.create_or_update_secret(
            "eventsvc/audit-hmac", secret={"x": "y"}, mount_point="kv"
        ),
    ]
    for forbidden in forbidden_calls:
        with pytest.raises(hvac.exceptions.Forbidden):
            forbidden()

    no_policy = vault_env(stack, person_token(stack, "default"))
    denied = eventsvc("audit", "verify", "--file", str(path), env=no_policy)
    assert denied.exit_code == 1
    assert denied.stderr.startswith("error: vault: ")


def test_emptying_the_database_is_reported_from_the_anchors(
    stack: Stack, mongod: RunningMongod, service_session: VaultSession, tmp_path: Path
) -> None:
    """The service anchors each checkpoint in Vault (create-only); the mongod admin
    deletes every record and checkpoint; `audit verify --anchors` names what is gone."""
    key = app_secret(stack, "audit-hmac")["audit_hmac_key"].encode()
    with mongod.admin_client() as admin:
        admin.drop_database("eventsvc_vault_anchors")
        database = admin["eventsvc_vault_anchors"]
        audit = AuditLog(
            database,
            key,
            service_session.checkpoint_signer(),
            checkpoint_anchor=service_session.checkpoint_anchor(),
        )
        audit.ensure_schema()
        for count in (3, 2):
            records = [audit.append(denied_entry(number)) for number in range(count)]
            audit.checkpoint()
        chain = records[-1].chain
        full = tmp_path / "full.jsonl"
        full.write_text("".join(json.dumps(line) + "\n" for line in export(database, None, None)))

        database["audit"].delete_many({})
        database["audit_checkpoints"].delete_many({})
        emptied = tmp_path / "emptied.jsonl"
        emptied.write_text(
            "".join(json.dumps(line) + "\n" for line in export(database, None, None))
        )
        admin.drop_database("eventsvc_vault_anchors")

    env = vault_env(stack, person_token(stack, "eventsvc-auditor"))
    intact = eventsvc("audit", "verify", "--file", str(full), "--anchors", env=env)
    assert intact.exit_code == 0, (intact.output, intact.exception)
    assert f"anchor: writer {audit.writer_id}: last anchored checkpoint 2 at" in intact.stdout

    # Without anchors an empty trail is a valid trail: that is the gap they close.
    assert eventsvc("audit", "verify", "--file", str(emptied), env=env).exit_code == 0
    gone = eventsvc("audit", "verify", "--file", str(emptied), "--anchors", env=env)
    assert gone.exit_code == 1
    assert f"{chain}: truncated at sequence 1: checkpointed up to record 5" in gone.stdout
    assert f"checkpoints: writer {audit.writer_id}: checkpoints 1 to 1 missing" in gone.stdout


def denied_entry(number: int) -> AuditEntry:
    return AuditEntry(
        actor="anonymous",
        action="request.denied",
        target=None,
        outcome="denied",
        before=None,
        after=None,
        client_address="192.0.2.1",
        request_id=f"r{number}",
        trace_id=None,
    )
