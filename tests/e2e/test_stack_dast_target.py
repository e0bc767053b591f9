"""``python -m devstack dast-target`` driven the way secgate drives it (secgate.dast_target).

A real stack: its JSON line names a working HTTPS API and a 0600 header file
whose token holds every scope; the token is in no line and no argv; the
service passes DAST's probe and passive checks; closing stdin stops every
process and removes the header file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

from secgate.dast_target import started_target
from secgate.model import ScanContext
from secgate.pipeline import run_stage
from support import alive

REPO = Path(__file__).resolve().parents[2]


def pids_of(run_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in run_dir.glob("*.pid")]


def command_lines() -> list[bytes]:
    """Every process's argv on this machine (those we may read)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes())
        except OSError:
            continue  # exited while we looked
    return lines


def test_dast_target_serves_until_stdin_closes(tmp_path: Path) -> None:
    run_dir = tmp_path / "dast"
    argv = [sys.executable, "-m", "devstack", "--run-dir", str(run_dir), "dast-target"]
    with started_target(argv, tmp_path / "target.log") as target:
        assert set(target) == {"base_url", "ca_file", "auth_header_file"}
        header_file = Path(target["auth_header_file"])
        assert header_file.stat().st_mode & 0o777 == 0o600
        name, _, value = header_file.read_text(encoding="ascii").strip().partition(": ")
        token = value.removeprefix("Bearer ")
        assert token
        assert token not in str(target)
        for path in ("/api/v1/events", "/api/v1/tokens", "/api/v1/audit"):  # every scope
            answer = requests.get(
                target["base_url"] + path,
                headers={name: value},
                verify=target["ca_file"],
                timeout=10,
            )
            assert answer.status_code == 200, (path, answer.text)
        # The real service passes the probe of undocumented routes and the passive checks
        # (security headers, content types, error bodies) on every answer.
        options = {**target, "dast_tools": "probe"}
        reports = tmp_path / "reports"
        ctx = ScanContext(
            REPO, reports, REPO / "security", REPO / ".venv-scan" / "bin", True, options
        )
        probed = run_stage("dast", ctx)
        assert probed.ran, probed.error
        assert probed.findings == []
        assert probed.metadata["probe"].endswith("authenticated: yes")
        components = pids_of(run_dir)
        assert len(components) == 3
        assert not [line for line in command_lines() if token.encode() in line]
    assert not header_file.exists()
    for pid in components:
        assert not alive(pid), f"pid {pid} survived the end of the scan"
    # The token was revoked through the API before the stack stopped (its database stays).
    token_id = token.split("_")[1]
    access = [json.loads(line) for line in (run_dir / "eventsvc.log").read_text().splitlines()]
    revoke_path = f"/api/v1/tokens/{token_id}/revoke"
    revoked = [
        r for r in access if r.get("logger") == "eventsvc.access" and r.get("path") == revoke_path
    ]
    assert [r["status"] for r in revoked] == [200]
