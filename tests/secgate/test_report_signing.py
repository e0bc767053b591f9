"""Report bundles: signed with a Vault transit key, verified byte for byte (real OpenBao)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from secgate_support import FIXTURES, TOOLS_BIN, copy_fixture

from devstack.openbao import RunningOpenBao, start_openbao

KEY = "secgate-report"
SIGN_ONLY = f'path "transit/sign/{KEY}" {{ capabilities = ["update"] }}\n'


@pytest.fixture(scope="module")
def bao(module_tmp: Path) -> Iterator[RunningOpenBao]:
    with start_openbao(module_tmp / "bao") as running:
        root = running.root_client()
        root.sys.enable_secrets_engine("transit", path="transit")
        root.secrets.transit.create_key(name=KEY, key_type="ed25519", exportable=False)
        root.sys.create_or_update_policy("secgate-report-signer", SIGN_ONLY)
        yield running


@pytest.fixture(scope="module")
def signer_token_file(bao: RunningOpenBao, module_tmp: Path) -> Path:
    token = bao.root_client().auth.token.create(policies=["secgate-report-signer"], ttl="1h")
    path = module_tmp / "signer-token"
    path.write_text(token["auth"]["client_token"], encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def public_key_file(bao: RunningOpenBao, module_tmp: Path) -> Path:
    """What an auditor fetches from Vault themselves: transit's public key (base64)."""
    key = bao.root_client().secrets.transit.read_key(name=KEY)["data"]["keys"]["1"]
    path = module_tmp / "report-key.pub"
    path.write_text(key["public_key"], encoding="utf-8")
    return path


def secgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secgate", *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A real run's report directory (secrets stage of the clean fixture)."""
    root = copy_fixture("clean", tmp_path)
    done = secgate(
        "scan", "--stages", "secrets", "--root", str(root), "--tools-bin", str(TOOLS_BIN),
        "--security-dir", str(FIXTURES.parents[2] / "security"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return (root / "security" / "reports" / "latest").resolve()


def sign(bundle: Path, bao: RunningOpenBao, token_file: Path) -> subprocess.CompletedProcess[str]:
    return secgate(
        "sign-report", str(bundle), "--vault-addr", bao.addr, "--token-file", str(token_file),
        "--ca-file", str(bao.ca_file), "--key", KEY, cwd=bundle,
    )  # fmt: skip


def verify(bundle: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return secgate("verify-report", str(bundle), *extra, cwd=bundle)


def test_a_signed_bundle_verifies_with_the_public_key_from_vault(
    bundle: Path, bao: RunningOpenBao, signer_token_file: Path, public_key_file: Path
) -> None:
    signed = sign(bundle, bao, signer_token_file)
    assert signed.returncode == 0, signed.stderr
    done = verify(bundle, "--public-key", str(public_key_file), "--require-signature")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature checked with the given public key" in done.stdout
    token = signer_token_file.read_text(encoding="utf-8")
    for path in bundle.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(encoding="utf-8", errors="replace"), path
    assert token not in signed.stdout + signed.stderr


def test_one_altered_byte_fails_verification(
    bundle: Path, bao: RunningOpenBao, signer_token_file: Path, public_key_file: Path
) -> None:
    assert sign(bundle, bao, signer_token_file).returncode == 0
    report = bundle / "report.html"
    data = bytearray(report.read_bytes())
    data[len(data) // 2] ^= 0x01
    report.write_bytes(bytes(data))
    done = verify(bundle, "--public-key", str(public_key_file))
    assert done.returncode == 1
    assert "report.html: SHA-256 differs from the manifest" in done.stderr


def test_a_rewritten_manifest_breaks_the_signature(
    bundle: Path, bao: RunningOpenBao, signer_token_file: Path, public_key_file: Path
) -> None:
    """Change a file *and* its hash in the manifest: the hashes agree, the signature does not."""
    assert sign(bundle, bao, signer_token_file).returncode == 0
    summary = bundle / "summary.md"
    summary.write_text("## secgate: PASSED\n", encoding="utf-8")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["artifacts"]["summary.md"] = hashlib.sha256(summary.read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    done = verify(bundle, "--public-key", str(public_key_file))
    assert done.returncode == 1
    assert "manifest.sig.json: the signature does not match" in done.stderr


def test_added_removed_files_and_a_foreign_key_are_refused(
    bundle: Path, bao: RunningOpenBao, signer_token_file: Path, tmp_path: Path
) -> None:
    assert sign(bundle, bao, signer_token_file).returncode == 0
    (bundle / "extra.txt").write_text("planted\n", encoding="utf-8")
    (bundle / "junit.xml").unlink()
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    done = verify(bundle, "--public-key", str(foreign))
    assert done.returncode == 1
    assert "extra.txt: in the bundle but not in the manifest" in done.stderr
    assert "junit.xml: listed in the manifest but missing" in done.stderr
    assert "the signature does not match" in done.stderr


def test_unsigned_bundles_pass_only_without_require_signature(bundle: Path) -> None:
    assert verify(bundle).returncode == 0
    assert "unsigned: no signing identity" in verify(bundle).stdout
    strict = verify(bundle, "--require-signature")
    assert strict.returncode == 1
    assert "no signature was checked" in strict.stderr


def test_a_token_without_the_sign_grant_cannot_sign(
    bundle: Path, bao: RunningOpenBao, tmp_path: Path
) -> None:
    root = bao.root_client()
    root.sys.create_or_update_policy("nothing", 'path "sys/nothing" { capabilities = ["read"] }')
    weak = root.auth.token.create(policies=["nothing"], ttl="1h")["auth"]["client_token"]
    token_file = tmp_path / "weak-token"
    token_file.write_text(weak, encoding="utf-8")
    done = sign(bundle, bao, token_file)
    assert done.returncode == 1
    assert "vault refused to sign at transit/sign/secgate-report: Forbidden" in done.stderr
    assert weak not in done.stdout + done.stderr
    assert not (bundle / "manifest.sig.json").exists()
