"""The DAST target command: secgate reads its JSON line, passes it on, and always stops it.

Stand-in target commands are small Python programs (``python -c``), so these
tests start no stack; tests/e2e/test_stack_dast_target.py runs the real one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from secgate.dast_target import TargetUnavailable, parse_command, started_target
from secgate.model import ScanContext
from secgate.pipeline import run_stages
from support import alive

REPO = Path(__file__).resolve().parents[2]

# Prints its target, then waits for stdin to close and says so in a file.
WELL_BEHAVED = """
import json, sys
print(json.dumps({"base_url": sys.argv[1], "ca_file": "ca.pem"}), flush=True)
sys.stdin.read()
open(sys.argv[2], "w").write("stopped when stdin closed")
"""


def command(program: str, *args: str) -> list[str]:
    return [sys.executable, "-c", program, *args]


def test_target_line_becomes_options_and_closing_stdin_stops_it(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    argv = command(WELL_BEHAVED, "https://127.0.0.1:8443", str(marker))
    with started_target(argv, tmp_path / "target.log") as options:
        assert options == {"base_url": "https://127.0.0.1:8443", "ca_file": "ca.pem"}
        assert not marker.exists()
    assert marker.read_text() == "stopped when stdin closed"


def test_a_target_that_ignores_stdin_is_terminated(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    program = (
        "import json, os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print(json.dumps({'base_url': 'https://127.0.0.1:1', 'ca_file': 'x'}), flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    with (
        pytest.MonkeyPatch.context() as patch,
        started_target(command(program), tmp_path / "target.log"),
    ):
        patch.setattr("secgate.dast_target.STOP_GRACE_S", 0.5)
    assert not alive(int(pid_file.read_text()))


def test_a_target_that_fails_is_reported_with_its_last_stderr_line(tmp_path: Path) -> None:
    program = "import sys; sys.stderr.write('devstack: mongod failed: boom\\n'); sys.exit(1)"
    with (
        pytest.raises(TargetUnavailable, match="exited 1 before its target line: devstack: mongod"),
        started_target(command(program), tmp_path / "target.log"),
    ):
        pytest.fail("no target was announced")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not JSON"),
        ('["https://127.0.0.1:1"]', "JSON object of strings"),
        ('{"base_url": "https://127.0.0.1:1", "ca_file": 1}', "JSON object of strings"),
        ('{"base_url": "https://127.0.0.1:1"}', "missing keys \\['ca_file'\\]"),
        (
            '{"base_url": "u", "ca_file": "c", "auth_header": "x"}',
            "unknown keys \\['auth_header'\\]",
        ),
    ],
)
def test_anything_but_the_agreed_line_is_refused(tmp_path: Path, line: str, reason: str) -> None:
    program = f"print({line!r}, flush=True); import sys; sys.stdin.read()"
    with (
        pytest.raises(TargetUnavailable, match=reason),
        started_target(command(program), tmp_path / "target.log"),
    ):
        pytest.fail("the line was accepted")


def test_a_silent_target_times_out(tmp_path: Path) -> None:
    program = "import sys; sys.stdin.read()"
    with (
        pytest.raises(TargetUnavailable, match="no target line in 1 s"),
        started_target(command(program), tmp_path / "target.log", ready_timeout_s=1),
    ):
        pytest.fail("no target was announced")


def test_a_missing_command_is_unavailable(tmp_path: Path) -> None:
    with (
        pytest.raises(TargetUnavailable, match="cannot run"),
        started_target([str(tmp_path / "no-such-command")], tmp_path / "target.log"),
    ):
        pytest.fail("nothing ran")


def test_command_text_is_split_like_a_shell_but_never_run_by_one() -> None:
    assert parse_command("python -m devstack 'dast-target'") == [
        "python",
        "-m",
        "devstack",
        "dast-target",
    ]
    with pytest.raises(ValueError, match="empty"):
        parse_command("  ")


def test_the_dast_stage_gets_the_target_and_options_given_with_o_win(tmp_path: Path) -> None:
    """The target's base_url reaches the stage (here refused: not loopback); -o overrides it."""
    marker = tmp_path / "stopped"
    argv = command(WELL_BEHAVED, "https://example.org", str(marker))
    report_dir = tmp_path / "reports"
    ctx = ScanContext(REPO, report_dir, REPO / "security", REPO / ".venv-scan" / "bin")
    [refused] = run_stages(ctx, ["dast"], argv)
    assert not refused.ran
    assert "not 'https://example.org'" in (refused.error or "")
    assert marker.exists()
    overridden = ScanContext(ctx.root, ctx.report_dir, ctx.security_dir, ctx.tools_bin,
                             options={"base_url": "https://example.net"})  # fmt: skip
    [result] = run_stages(overridden, ["dast"], argv)
    assert "not 'https://example.net'" in (result.error or "")


def test_a_target_that_does_not_start_fails_dast_only(tmp_path: Path) -> None:
    ctx = ScanContext(REPO, tmp_path, REPO / "security", REPO / ".venv-scan" / "bin")
    [result] = run_stages(ctx, ["dast"], command("import sys; sys.exit(3)"))
    assert not result.ran
    assert (result.error or "").startswith("DAST target did not start: exited 3")
