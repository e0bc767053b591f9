"""One report for auditors from the bundles of separate stage runs (CI runs a job per stage).

Each bundle is copied whole into the combined directory (its own manifest and
signature included, so it stays checkable on its own), its ``results.json`` is
read back into stage results (a stage run in two jobs, as CI runs DAST, becomes
one result holding both), and the caller applies the gate to all of them
together and writes the combined reports next to the copies.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from secgate import results
from secgate.model import StageResult


class CombineError(ValueError):
    """The bundles cannot be combined; the message says which and why."""


@dataclass(frozen=True)
class Combined:
    commit: str
    results: list[StageResult]
    sources: dict[str, str]  # copied folder -> the bundle's own run id


def gather(bundles: list[Path], out: Path) -> Combined:
    """Copy each bundle to ``out/<its name>/`` and return their stage results, pointing there."""
    if out.exists() and any(out.iterdir()):
        raise CombineError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    loaded = []
    for source in bundles:
        run_id, commit, stages = results.load(source)
        loaded.append((source, run_id, commit, stages))
    commits = {commit for _, _, commit, _ in loaded}
    if len(commits) != 1:
        raise CombineError(f"the bundles scanned different commits: {', '.join(sorted(commits))}")
    run_ids = [run_id for _, run_id, _, _ in loaded]
    twice = sorted({run_id for run_id in run_ids if run_ids.count(run_id) > 1})
    if twice:
        raise CombineError(f"the same bundle was given twice: {', '.join(twice)}")
    by_stage: dict[str, StageResult] = {}
    sources: dict[str, str] = {}
    for source, run_id, _, stages in loaded:
        target = out / _folder_name(source, sources)
        shutil.copytree(source, target, symlinks=False)
        sources[target.name] = run_id
        for stage in stages:
            stage.artifacts = [target / path.relative_to(source) for path in stage.artifacts]
            previous = by_stage.get(stage.stage)
            by_stage[stage.stage] = stage if previous is None else _merge(previous, stage)
    return Combined(commits.pop(), list(by_stage.values()), sources)


def _merge(first: StageResult, second: StageResult) -> StageResult:
    """One stage run in two jobs (CI's DAST: schemathesis and wapiti, then ZAP): both count."""
    errors = [e for e in (first.error, second.error) if e]
    return StageResult(
        stage=first.stage,
        ran=first.ran and second.ran,
        findings=[*first.findings, *second.findings],
        tool_versions={**first.tool_versions, **second.tool_versions},
        artifacts=[*first.artifacts, *second.artifacts],
        error="; ".join(errors) or None,
        notes=[*first.notes, *second.notes],
        metadata={**first.metadata, **second.metadata},
        seconds=first.seconds + second.seconds,
    )


def _folder_name(source: Path, taken: dict[str, str]) -> str:
    name = source.resolve().name
    number = 1
    candidate = name
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    return candidate
