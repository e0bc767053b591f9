"""Run cosmic-ray on one module with that module's tests, and classify every mutant.

cosmic-ray mutates the file *in place* (one mutant at a time) and restores
it; this module also keeps the original bytes and puts them back itself, so
an interrupted run never leaves a mutated control in the working tree.

The test command is timed once on the unmutated code first: if the tests
fail there, mutants prove nothing and the module is reported as such; the
per-mutant timeout is a multiple of that time (a mutant that hangs the tests
is detected, counted as "timeout").
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mutation import annotation_mutants
from mutation.config import ModuleUnderTest, MutationConfig

Outcome = Literal[
    "killed", "timeout", "survived", "equivalent", "incompetent", "skipped", "pending"
]
# The kill rate's denominator: equivalent, incompetent (the mutant could not
# run), skipped (operator excluded in the config) and pending do not count.
DETECTED: frozenset[Outcome] = frozenset({"killed", "timeout"})
COUNTED: frozenset[Outcome] = frozenset({"killed", "timeout", "survived"})


@dataclass(frozen=True)
class Mutant:
    operator: str
    line: int
    column: int
    outcome: Outcome
    diff: str
    reason: str | None = None  # why an equivalent mutant is equivalent (from the config)


@dataclass
class ModuleResult:
    """One module's run: every mutant, timings, and the source it ran on."""

    module: str
    tests: tuple[str, ...]
    source_sha256: str
    seconds: float
    baseline_seconds: float
    mutants: list[Mutant] = field(default_factory=list)
    error: str | None = None  # set when the run proves nothing (e.g. tests fail unmutated)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for mutant in self.mutants if mutant.outcome == outcome)

    @property
    def kill_rate(self) -> float | None:
        """Detected / (detected + survived); None when no mutant counts."""
        counted = sum(1 for mutant in self.mutants if mutant.outcome in COUNTED)
        if counted == 0:
            return None
        return sum(1 for mutant in self.mutants if mutant.outcome in DETECTED) / counted

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "tests": list(self.tests),
            "source_sha256": self.source_sha256,
            "seconds": round(self.seconds, 1),
            "baseline_seconds": round(self.baseline_seconds, 1),
            "error": self.error,
            "mutants": [vars(mutant) for mutant in self.mutants],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModuleResult:
        return cls(
            module=data["module"],
            tests=tuple(data["tests"]),
            source_sha256=data["source_sha256"],
            seconds=float(data["seconds"]),
            baseline_seconds=float(data["baseline_seconds"]),
            mutants=[Mutant(**mutant) for mutant in data["mutants"]],
            error=data["error"],
        )


def source_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_command(module: ModuleUnderTest) -> list[str]:
    """pytest on the module's tests only, stopping at the first failure (one is enough to kill)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        *module.tests,
    ]


def run_module(
    module: ModuleUnderTest,
    config: MutationConfig,
    *,
    repo_root: Path,
    work_dir: Path,
    cosmic_ray: Path,
) -> ModuleResult:
    """Mutate ``module`` with cosmic-ray and classify each mutant; the source is always restored."""
    source = repo_root / module.path
    original = source.read_bytes()
    started = time.monotonic()
    result = ModuleResult(module.path, module.tests, source_sha256(source), 0.0, 0.0)
    try:
        baseline = subprocess.run(  # our own test command, no shell
            test_command(module), cwd=repo_root, capture_output=True, check=False
        )
        result.baseline_seconds = time.monotonic() - started
        if baseline.returncode != 0:
            tail = baseline.stdout.decode(errors="replace")[-2000:]
            result.error = f"the tests fail on the unmutated code:\n{tail}"
            return result
        timeout = max(config.min_timeout_seconds, config.timeout_factor * result.baseline_seconds)
        spans = (
            annotation_mutants.annotation_spans(original.decode("utf-8"))
            if config.skip_annotation_mutants
            else []
        )
        session = _cosmic_ray_session(
            module, config, repo_root, work_dir, cosmic_ray, timeout, spans
        )
        result.mutants = [_classify(line, spans) for line in session]
    finally:
        if source.read_bytes() != original:
            source.write_bytes(original)
        result.seconds = time.monotonic() - started
    return result


def _cosmic_ray_session(
    module: ModuleUnderTest,
    config: MutationConfig,
    repo_root: Path,
    work_dir: Path,
    cosmic_ray: Path,
    timeout: float,
    annotation_spans: list[annotation_mutants.Span],
) -> list[list[Any]]:
    """init, filter, exec, dump: the ``[work_item, result]`` pairs of the session."""
    work_dir.mkdir(parents=True, exist_ok=True)
    cr_config = work_dir / "cosmic-ray.toml"
    cr_config.write_text(_cosmic_ray_toml(module, config, timeout), encoding="utf-8")
    session = work_dir / "session.sqlite"
    session.unlink(missing_ok=True)
    tools = cosmic_ray.parent

    def run(*command: str | Path) -> str:
        completed = subprocess.run(  # cosmic-ray from our own venv, no shell
            [str(part) for part in command],
            cwd=repo_root,
            capture_output=True,
            check=True,
            text=True,
        )
        return completed.stdout

    run(cosmic_ray, "init", cr_config, session)
    if config.exclude_operators:
        run(tools / "cr-filter-operators", session, cr_config)
    if annotation_spans:
        pending = [json.loads(line) for line in run(cosmic_ray, "dump", session).splitlines()]
        in_annotations = [
            work_item["job_id"]
            for work_item, _ in pending
            if _in_annotation(work_item, annotation_spans)
        ]
        if in_annotations:
            run(
                tools / "python",
                "-c",
                _MARK_SKIPPED,
                session,
                annotation_mutants.REASON,
                *in_annotations,
            )
    run(cosmic_ray, "exec", cr_config, session)
    return [json.loads(line) for line in run(cosmic_ray, "dump", session).splitlines() if line]


def _cosmic_ray_toml(module: ModuleUnderTest, config: MutationConfig, timeout: float) -> str:
    """cosmic-ray's config for one module (written under build/, never edited by hand)."""
    excluded = ", ".join(json.dumps(pattern) for pattern in config.exclude_operators)
    command = shlex.join(test_command(module))
    return (
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module.path)}\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        "\n[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "\n[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


# cosmic-ray's own way to take a mutant out of a run (as its cr-filter-* tools do): a
# "skipped" result, so that `exec` does not run it. Runs in the mutation venv.
_MARK_SKIPPED = """\
import sys
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult
with use_db(sys.argv[1], WorkDB.Mode.open) as db:
    for job_id in sys.argv[3:]:
        db.set_result(job_id, WorkResult(output=sys.argv[2], worker_outcome=WorkerOutcome.SKIPPED))
"""


def _in_annotation(work_item: dict[str, Any], spans: list[annotation_mutants.Span]) -> bool:
    line, column = (int(part) for part in work_item["mutations"][0]["start_pos"])
    return annotation_mutants.in_annotation(spans, line, column)


def _classify(pair: list[Any], annotation_spans: list[annotation_mutants.Span]) -> Mutant:
    """One ``cosmic-ray dump`` line as a mutant with the outcome its test run had.

    A mutant skipped because it lies in an annotation is equivalent, with the reason.
    """
    work_item, result = pair
    mutation = work_item["mutations"][0]
    operator = str(mutation["operator_name"])
    line, column = (int(part) for part in mutation["start_pos"])
    diff = "" if result is None else str(result.get("diff") or "")
    outcome = _outcome(result)
    if outcome == "skipped" and _in_annotation(work_item, annotation_spans):
        return Mutant(operator, line, column, "equivalent", diff, annotation_mutants.REASON)
    return Mutant(operator, line, column, outcome, diff)


def with_equivalents(result: ModuleResult, config: MutationConfig) -> ModuleResult:
    """The result with the config's equivalent mutants marked (at report time, so that
    adding a reason to the config does not need a new run)."""
    mutants = []
    for mutant in result.mutants:
        entry = config.equivalent(result.module, mutant.operator, mutant.line, mutant.column)
        if entry is not None and mutant.outcome == "survived":
            mutant = replace(mutant, outcome="equivalent", reason=entry.reason)
        mutants.append(mutant)
    return replace(result, mutants=mutants)


def _outcome(result: dict[str, Any] | None) -> Outcome:
    if result is None:
        return "pending"
    if result["worker_outcome"] == "skipped":
        return "skipped"
    if result["test_outcome"] == "survived":
        return "survived"
    if result["test_outcome"] == "killed":
        return "timeout" if result.get("output") == "timeout" else "killed"
    return "incompetent"
