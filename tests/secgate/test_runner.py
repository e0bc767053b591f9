"""The stage runner never turns a broken scanner into a pass."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from secgate_support import SECURITY, copy_fixture

from secgate.gate import evaluate
from secgate.model import ScanContext
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY
from secgate.stages import STAGE_NAMES, UnknownStage, load_stage


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
