"""``build/mutation/``: per-module results, one report, and the verdict.

Each module's result is kept in ``build/mutation/<module>/result.json`` with
the SHA-256 of the source it ran on, so modules can be run one at a time and
the report still tells a current result from a stale one (the source changed
since) and from a module that never ran. The verdict fails on any module
below the threshold, with a failed baseline, stale, or not run: nothing is
claimed that was not measured on this code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mutation.config import ModuleUnderTest, MutationConfig
from mutation.run import ModuleResult, Outcome, source_sha256, with_equivalents

Status = Literal["pass", "below threshold", "baseline failed", "stale", "not run"]
OUTCOMES: tuple[Outcome, ...] = (
    "killed",
    "timeout",
    "survived",
    "equivalent",
    "incompetent",
    "skipped",
    "pending",
)


@dataclass(frozen=True)
class ModuleVerdict:
    module: ModuleUnderTest
    status: Status
    result: ModuleResult | None


def result_path(report_dir: Path, module: ModuleUnderTest) -> Path:
    return report_dir / module.slug / "result.json"


def save_result(report_dir: Path, module: ModuleUnderTest, result: ModuleResult) -> None:
    path = result_path(report_dir, module)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def verdicts(config: MutationConfig, repo_root: Path, report_dir: Path) -> list[ModuleVerdict]:
    """Every configured module's status, from the results on disk."""
    found: list[ModuleVerdict] = []
    for module in config.modules:
        path = result_path(report_dir, module)
        if not path.is_file():
            found.append(ModuleVerdict(module, "not run", None))
            continue
        stored = ModuleResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        result = with_equivalents(stored, config)
        found.append(ModuleVerdict(module, _status(config, repo_root, module, result), result))
    return found


def _status(
    config: MutationConfig, repo_root: Path, module: ModuleUnderTest, result: ModuleResult
) -> Status:
    if result.source_sha256 != source_sha256(repo_root / module.path):
        return "stale"
    if result.error is not None:
        return "baseline failed"
    rate = result.kill_rate
    if rate is None or rate < config.threshold:
        return "below threshold"
    return "pass"


def write_report(config: MutationConfig, found: list[ModuleVerdict], report_dir: Path) -> Path:
    """report.md (for people) and report.json (for tools); returns the Markdown path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = [
        {
            "module": verdict.module.path,
            "status": verdict.status,
            "kill_rate": None if verdict.result is None else verdict.result.kill_rate,
            "seconds": None if verdict.result is None else round(verdict.result.seconds),
            **{
                outcome: (None if verdict.result is None else verdict.result.count(outcome))
                for outcome in OUTCOMES
            },
        }
        for verdict in found
    ]
    report_json = {"threshold": config.threshold, "modules": summary}
    (report_dir / "report.json").write_text(json.dumps(report_json, indent=2) + "\n", "utf-8")
    markdown = report_dir / "report.md"
    markdown.write_text(_markdown(config, found), encoding="utf-8")
    return markdown


def _markdown(config: MutationConfig, found: list[ModuleVerdict]) -> str:
    lines = [
        "# Mutation testing",
        "",
        f"Threshold: {config.threshold:.0%} of non-equivalent mutants detected "
        "(killed or timed out).",
        "",
        "| module | status | kill rate | killed | timeout | survived | equivalent "
        "| incompetent | skipped | run time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for verdict in found:
        result = verdict.result
        if result is None:
            lines.append(f"| {verdict.module.path} | {verdict.status} |" + " |" * 8)
            continue
        rate = "n/a" if result.kill_rate is None else f"{result.kill_rate:.1%}"
        counts = " | ".join(
            str(result.count(outcome))
            for outcome in ("killed", "timeout", "survived", "equivalent", "incompetent", "skipped")
        )
        lines.append(
            f"| {verdict.module.path} | {verdict.status} | {rate} | {counts} "
            f"| {result.seconds:.0f} s |"
        )
    for verdict in found:
        lines += _details(verdict)
    return "\n".join(lines) + "\n"


def _details(verdict: ModuleVerdict) -> list[str]:
    result = verdict.result
    if result is None:
        return []
    lines = ["", f"## {verdict.module.path}", "", "Tests: " + ", ".join(result.tests)]
    if result.error is not None:
        lines += ["", "```", result.error, "```"]
    for title, outcome in (
        ("Survived", "survived"),
        ("Timed out", "timeout"),
        ("Equivalent", "equivalent"),
        ("Incompetent", "incompetent"),
    ):
        mutants = [mutant for mutant in result.mutants if mutant.outcome == outcome]
        if not mutants:
            continue
        lines += ["", f"### {title} ({len(mutants)})"]
        for mutant in mutants:
            lines += ["", f"- `{mutant.operator}` at line {mutant.line}, column {mutant.column}"]
            if mutant.reason:
                lines.append(f"  equivalent because: {mutant.reason}")
            if mutant.diff:
                lines += ["", "```diff", mutant.diff.strip(), "```"]
    return lines
