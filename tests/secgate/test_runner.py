"""The stage runner never turns a broken scanner into a pass."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from secgate_support import SECURITY, TOOLS_BIN, copy_fixture

from secgate.gate import evaluate
from secgate.model import ScanContext
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY
from secgate.stages import STAGE_NAMES, UnknownStage, load_stage
from secgate.tools import installed_version, tool_version


@pytest.mark.parametrize("stage", ["sast", "secrets", "config"])
def test_missing_tools_mean_not_run_and_a_failed_gate(tmp_path: Path, stage: str) -> None:
    root = copy_fixture("unpinned_action", tmp_path)
    (root / ".secrets.baseline").write_text("{}", encoding="utf-8")
    empty_bin = tmp_path / "no-tools"
    empty_bin.mkdir()
    ctx = ScanContext(root, tmp_path / "reports", SECURITY, empty_bin)
    ctx.report_dir.mkdir()
    result = run_stage(stage, ctx)
    assert not result.ran
    assert result.error is not None
    assert "not found in" in result.error
    verdict = evaluate([result], DEFAULT_POLICY, [], dt.date(2026, 6, 1))
    assert not verdict.passed


def test_every_registered_stage_has_a_run_function() -> None:
    for name in STAGE_NAMES:
        assert callable(load_stage(name))


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(UnknownStage):
        load_stage("fuzz")


@pytest.mark.parametrize(
    ("distribution", "tool"),
    [
        ("bandit", "bandit"),
        ("check-jsonschema", "check-jsonschema"),
        ("cyclonedx-bom", "cyclonedx-py"),
    ],
)
def test_installed_version_is_what_the_tool_itself_reports(
    tmp_path: Path, distribution: str, tool: str
) -> None:
    """The report's version comes from the scan venv's metadata: it must be the one that ran."""
    ctx = ScanContext(tmp_path, tmp_path / "reports", SECURITY, TOOLS_BIN)
    version = installed_version(ctx, distribution, tool)
    assert re.fullmatch(r"\d+(\.\d+)+", version)
    assert version in tool_version(ctx, tool).split()[-1].split(",")


def test_installed_version_outside_a_venv_asks_the_tool(tmp_path: Path) -> None:
    """A tools directory that is no venv (a system bin) falls back to `--version`, never a guess."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "scanner"
    script.write_text("#!/bin/sh\necho scanner 9.8.7\n", encoding="utf-8")
    script.chmod(0o755)
    ctx = ScanContext(tmp_path, tmp_path / "reports", SECURITY, bin_dir)
    assert installed_version(ctx, "bandit", "scanner") == "scanner 9.8.7"
