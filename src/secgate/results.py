"""results.json: a run's stage results as data, so runs of separate CI jobs can be combined.

Each stage runs in its own CI job and writes its own bundle. ``secgate
combine`` reads every bundle's ``results.json`` back into stage results,
applies the gate once more to all of them together and writes one report for
auditors (:mod:`secgate.combine`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from secgate.model import Confidence, Finding, Severity, StageResult

RESULTS_FILE = "results.json"


class ResultsError(ValueError):
    """A bundle's results.json cannot be read; the message names the bundle."""


def document(
    run_id: str, commit: str, results: list[StageResult], report_dir: Path
) -> dict[str, Any]:
    """The content of results.json; artifact paths relative to the run's directory."""
    return {
        "run_id": run_id,
        "commit": commit,
        "stages": [_stage(result, report_dir) for result in results],
    }


def _stage(result: StageResult, report_dir: Path) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["findings"] = [_finding(f) for f in result.findings]
    data["artifacts"] = [_relative(path, report_dir) for path in result.artifacts]
    return data


def _finding(finding: Finding) -> dict[str, Any]:
    data = dataclasses.asdict(finding)
    data["severity"] = finding.severity.name.lower()
    data["confidence"] = finding.confidence.name.lower()
    return data


def _relative(path: Path, report_dir: Path) -> str:
    try:
        return path.resolve().relative_to(report_dir.resolve()).as_posix()
    except ValueError:
        return path.name


def load(run_dir: Path) -> tuple[str, str, list[StageResult]]:
    """``(run_id, commit, stage results)`` of one bundle; artifacts resolved inside it."""
    path = run_dir / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stages = [_stage_result(entry, run_dir) for entry in data["stages"]]
        return str(data["run_id"]), str(data["commit"]), stages
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(
            f"{path}: not a secgate results file ({type(exc).__name__}: {exc})"
        ) from exc


def _stage_result(entry: dict[str, Any], run_dir: Path) -> StageResult:
    known = {f.name for f in dataclasses.fields(StageResult)}
    values = {key: value for key, value in entry.items() if key in known}
    values["findings"] = [_finding_of(f) for f in entry.get("findings", [])]
    values["artifacts"] = [run_dir / name for name in entry.get("artifacts", [])]
    return StageResult(**values)


def _finding_of(entry: dict[str, Any]) -> Finding:
    known = {f.name for f in dataclasses.fields(Finding)}
    values = {key: value for key, value in entry.items() if key in known}
    values["severity"] = Severity.parse(str(entry["severity"]))
    values["confidence"] = Confidence.parse(str(entry["confidence"]))
    return Finding(**values)
