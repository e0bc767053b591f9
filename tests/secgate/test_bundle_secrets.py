"""No secret in the report bundle: the DAST token, API tokens and known credential formats."""

from __future__ import annotations

import secrets
import string
import subprocess
import sys
from pathlib import Path

from secgate_support import SECURITY, TOOLS_BIN, context

from secgate.bundle import secrets_in_bundle


def api_token() -> str:
    """An eventsvc-shaped token, made at test time (nothing secret-shaped is committed)."""
    alphabet = string.ascii_lowercase + string.digits
    token_id = "".join(secrets.choice(alphabet) for _ in range(16))
    return f"evt_{token_id}_{secrets.token_urlsafe(32)}"


def private_key_block() -> str:
    body = secrets.token_bytes(48).hex()
    return "-----BEGIN " + "RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----\n"


def test_a_clean_bundle_has_nothing_to_report(tmp_path: Path) -> None:
    ctx = context(tmp_path / "project", tmp_path / "bundle")
    (ctx.report_dir / "summary.md").write_text("fingerprint " + "ab" * 32 + "\n", "utf-8")
    (ctx.report_dir / "detect-secrets.json").write_text(
        '{"hashed_secret": "' + "0" * 40 + '", "type": "Secret Keyword"}\n', "utf-8"
    )
    assert secrets_in_bundle(ctx, set()) == []


def test_the_dast_token_an_api_token_and_a_private_key_are_each_found(tmp_path: Path) -> None:
    ctx = context(tmp_path / "project", tmp_path / "bundle")
    dast_token = secrets.token_urlsafe(24)
    (ctx.report_dir / "dast").mkdir()
    (ctx.report_dir / "dast" / "wapiti.log").write_text(
        f"GET /api/v1/events Authorization: Bearer {dast_token}\n", "utf-8"
    )
    (ctx.report_dir / "bandit.json").write_text(
        f'{{"code": "TOKEN = \\"{api_token()}\\""}}\n', "utf-8"
    )
    (ctx.report_dir / "notes.txt").write_text(private_key_block(), "utf-8")
    problems = secrets_in_bundle(ctx, {dast_token, "short"})
    assert problems == [
        "report bundle: bandit.json holds an eventsvc API token",
        "report bundle: dast/wapiti.log holds a secret this run used (the DAST token)",
        "report bundle: notes.txt line 1 holds a Private Key",
    ]
    assert not any(dast_token in line for line in problems)


def test_a_bundle_that_cannot_be_checked_fails(tmp_path: Path) -> None:
    ctx = context(tmp_path / "project", tmp_path / "bundle")
    ctx = type(ctx)(ctx.root, ctx.report_dir, SECURITY, tmp_path / "no-tools")
    (problem,) = secrets_in_bundle(ctx, set())
    assert problem.startswith("report bundle: could not be checked for secrets (ToolMissing")


def test_a_token_quoted_by_a_scanner_fails_the_gate(tmp_path: Path) -> None:
    """A committed token reaches bandit's code snippet in bandit.json: the gate says so."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(f'API_TOKEN = "{api_token()}"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "secgate", "scan", "--stages", "sast", "--root", str(root),
         "--tools-bin", str(TOOLS_BIN), "--security-dir", str(SECURITY)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "report bundle: bandit.json holds an eventsvc API token" in done.stdout
    summary = (root / "security" / "reports" / "latest" / "summary.md").read_text("utf-8")
    assert "report bundle: bandit.json holds an eventsvc API token" in summary
