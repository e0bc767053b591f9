"""``python -m eventsvc.server`` fails closed when Vault cannot give it its credentials.

Each case starts the real server process against a real OpenBao and expects:
a non-zero exit, exactly one line on stderr that says what to fix, and no
traceback. No case falls back to anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from vault_support import Stack, start_stack

from devstack.openbao import deliver_wrapped_secret_id, role_id, start_openbao
from support import coverage_env, free_port

NO_PKI_POLICY = """
path "kv/data/eventsvc/*" { capabilities = ["read"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("vault"))
    try:
        yield running
    finally:
        running.bao.stop()


def server_env(
    tmp_path: Path, addr: str, ca_file: Path, role: str, wrapped: Path, approle_role: str
) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **coverage_env(),
        "EVENTSVC_PROFILE": "dev",
        "EVENTSVC_BIND": "127.0.0.1:0",
        "EVENTSVC_VAULT_ADDR": addr,
        "EVENTSVC_VAULT_CA_FILE": str(ca_file),
        "EVENTSVC_VAULT_ROLE_ID": role,
        "EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE": str(wrapped),
        "EVENTSVC_VAULT_APPROLE_ROLE": approle_role,
        "EVENTSVC_RUNTIME_DIR": str(tmp_path / "run"),
        "EVENTSVC_MONGODB_HOSTS": "127.0.0.1:1",
    }


def run_server(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventsvc.server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stack_env(stack: Stack, tmp_path: Path, approle_role: str = "eventsvc") -> dict[str, str]:
    wrapped = deliver_wrapped_secret_id(
        stack.root, tmp_path / "secret-id.wrapped", role_name=approle_role
    )
    return server_env(
        tmp_path,
        stack.bao.addr,
        stack.bao.ca_file,
        role_id(stack.root, role_name=approle_role),
        wrapped,
        approle_role,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("eventsvc:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    for fragment in expected:
        assert fragment in lines[0]
    return lines[0]


def assert_runtime_dir_clean(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    assert not runtime.exists() or not any(runtime.iterdir())


def test_vault_down_is_one_line_naming_the_address(stack: Stack, tmp_path: Path) -> None:
    env = stack_env(stack, tmp_path)
    addr = f"https://127.0.0.1:{free_port()}"
    env["EVENTSVC_VAULT_ADDR"] = addr
    line = assert_one_line_failure(run_server(env), addr, "unreachable")
    assert line.startswith("eventsvc: vault error: ")
    assert_runtime_dir_clean(tmp_path)


def test_sealed_vault_is_one_line_saying_to_unseal(tmp_path: Path) -> None:
    with start_openbao(tmp_path / "sealed") as bao:
        bao.seal()
        wrapped = tmp_path / "secret-id.wrapped"
        wrapped.write_text("not-used\n", encoding="ascii")
        env = server_env(tmp_path, bao.addr, bao.ca_file, "any", wrapped, "eventsvc")
        assert_one_line_failure(run_server(env), bao.addr, "sealed", "unseal")
    assert_runtime_dir_clean(tmp_path)


def test_permission_denied_names_path_and_policy_and_revokes_the_login(
    stack: Stack, tmp_path: Path
) -> None:
    root: hvac.Client = stack.root
    root.sys.create_or_update_policy("eventsvc-no-pki", NO_PKI_POLICY)
    root.write_data(
        "auth/approle/role/eventsvc-no-pki",
        data={"token_policies": ["eventsvc-no-pki"], "token_no_default_policy": True},
    )
    accessors_before = set(root.list("auth/token/accessors")["data"]["keys"])
    env = stack_env(stack, tmp_path, approle_role="eventsvc-no-pki")
    assert_one_line_failure(
        run_server(env),
        stack.bao.addr,
        "pki_int/issue/eventsvc-mongo-client",
        "permission denied",
        "eventsvc-no-pki",
    )
    assert_runtime_dir_clean(tmp_path)
    # The token of the failed start was revoked, not left to expire.
    assert set(root.list("auth/token/accessors")["data"]["keys"]) == accessors_before


def test_wrapped_secret_id_already_used_is_refused(stack: Stack, tmp_path: Path) -> None:
    env = stack_env(stack, tmp_path)
    wrapping_token = Path(env["EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE"]).read_text().strip()
    thief = hvac.Client(url=stack.bao.addr, token=wrapping_token, verify=str(stack.bao.ca_file))
    thief.sys.unwrap()  # someone else got there first
    assert_one_line_failure(run_server(env), "already used", "audit log")
    assert_runtime_dir_clean(tmp_path)


def test_wrapped_secret_id_for_another_path_is_refused(stack: Stack, tmp_path: Path) -> None:
    env = stack_env(stack, tmp_path)
    # A real wrapping token, but of the role_id, not of a secret_id.
    other = stack.root.read("auth/approle/role/eventsvc/role-id", wrap_ttl="60s")
    Path(env["EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE"]).write_text(
        other["wrap_info"]["token"] + "\n", encoding="ascii"
    )
    assert_one_line_failure(run_server(env), "refusing to unwrap")


def test_token_auth_outside_the_dev_profile_is_refused(stack: Stack, tmp_path: Path) -> None:
    env = stack_env(stack, tmp_path)
    token_file = tmp_path / "vault-token"
    token_file.write_text(stack.bao.root_token + "\n", encoding="ascii")
    token_file.chmod(0o600)
    env |= {
        "EVENTSVC_PROFILE": "test",
        "EVENTSVC_VAULT_AUTH_METHOD": "token",
        "EVENTSVC_VAULT_TOKEN_FILE": str(token_file),
    }
    result = run_server(env)
    assert_one_line_failure(result, "token is allowed in the dev profile only")
    assert stack.bao.root_token not in result.stderr + result.stdout
