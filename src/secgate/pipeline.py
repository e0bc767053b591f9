"""One scan run: its report directory, the stages in order (the DAST target
started around the dast stage when a command gives it), the ``latest`` link.

A run lives in ``security/reports/<run-id>/`` where run-id is the UTC start
time plus the short commit, so runs sort by time and say what they scanned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from secgate import git
from secgate.changes import Changes
from secgate.configreview import ConfigReview
from secgate.controls import Control
from secgate.dast_target import TargetUnavailable, started_target
from secgate.model import ScanContext, ScanOutput, StageResult
from secgate.provenance import Provenance
from secgate.stages import load_stage
from secgate.testresults import JUnitResults
from secgate.tools import ToolFailed, ToolMissing

logger = logging.getLogger(__name__)
# One line per stage and scanner as they start and finish (stderr; see enable_progress).
progress = logging.getLogger("secgate.progress")


def enable_progress() -> None:
    """Show progress lines on stderr whatever the log level: a scan takes minutes."""
    if progress.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("secgate %(relativeCreated)7.0f ms  %(message)s"))
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    progress.propagate = False


@dataclass
class RunInfo:
    """What the reports say about the run itself."""

    run_id: str
    commit: str
    root: Path
    report_dir: Path
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    stages: list[str] = field(default_factory=list)
    config_review: ConfigReview | None = None  # vs the base branch, when asked
    test_results: JUnitResults | None = None  # this run's `make test` results, when given
    test_results_file: Path | None = None
    controls: list[Control] = field(default_factory=list)  # security/controls.yml
    provenance: Provenance | None = None  # secgate version, tree state, configuration hashes
    changes: Changes | None = None  # findings against the previous run's


def start_run(root: Path, reports_base: Path, stages: list[str], now: dt.datetime) -> RunInfo:
    """Create ``<reports_base>/<run-id>/`` and describe the run."""
    commit = git.commit(root)
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{commit[:8]}"
    report_dir = reports_base / run_id
    suffix = 1
    while report_dir.exists():  # two runs in the same second
        suffix += 1
        report_dir = reports_base / f"{run_id}-{suffix}"
    report_dir.mkdir(parents=True)
    return RunInfo(report_dir.name, commit, root, report_dir, now, stages=stages)


def run_stages(
    ctx: ScanContext, stages: list[str], dast_target_command: Sequence[str] = ()
) -> list[StageResult]:
    """Run the stages side by side; each one's failure is contained in its result.

    No stage depends on another: the static ones read the tree, DAST attacks
    its own throwaway target. Their scanners are separate processes, so the
    run takes about as long as the slowest stage (DAST, time-bounded), not the
    sum. With ``dast_target_command`` DAST runs while that command's target is
    up (:mod:`secgate.dast_target`); a target that does not come up fails the
    dast stage, not the run. Results come back in ``stages`` order.
    """
    with ThreadPoolExecutor(max_workers=max(len(stages), 1)) as pool:
        running = {
            name: pool.submit(_run_dast, ctx, dast_target_command)
            if name == "dast" and dast_target_command
            else pool.submit(_run_with_progress, name, ctx)
            for name in stages
        }
        results = {name: future.result() for name, future in running.items()}
    return [results[name] for name in stages]


def _run_dast(ctx: ScanContext, command: Sequence[str]) -> StageResult:
    progress.info("dast: starting the target and the scanners")
    started = time.monotonic()
    result = _dast_against_started_target(ctx, command)
    _report_progress(result, time.monotonic() - started)
    return result


def _run_with_progress(name: str, ctx: ScanContext) -> StageResult:
    progress.info("%s: started", name)
    result = run_stage(name, ctx)
    _report_progress(result, result.seconds)
    return result


def _report_progress(result: StageResult, seconds: float) -> None:
    state = f"{len(result.findings)} finding(s)" if result.ran else f"DID NOT RUN: {result.error}"
    progress.info("%s: done in %.1f s, %s", result.stage, seconds, state)


def run_stage(name: str, ctx: ScanContext) -> StageResult:
    """Run one stage and time it; errors, a missing tool or a crash make it "did not run"."""
    started = time.monotonic()
    try:
        output = load_stage(name)(ctx)
    except (ToolMissing, ToolFailed) as exc:
        output = ScanOutput(errors=[str(exc)])
    except Exception as exc:  # a crashing stage must fail the gate, not the whole run
        logger.exception("stage %s crashed", name)
        output = ScanOutput(errors=[f"stage crashed: {exc!r}"])
    result = StageResult.from_output(name, output, time.monotonic() - started)
    if not result.ran:
        logger.error("stage %s did not run: %s", name, result.error)
    return result


def _dast_against_started_target(ctx: ScanContext, command: Sequence[str]) -> StageResult:
    """The dast stage against the target ``command`` starts; options given with -o win."""
    log_file = ctx.report_dir / "dast" / "target-command.log"
    try:
        with started_target(command, log_file) as target:
            remember_token(ctx, target.get("auth_header_file"))
            return run_stage("dast", dataclasses.replace(ctx, options={**target, **ctx.options}))
    except TargetUnavailable as exc:
        return StageResult("dast", ran=False, error=f"DAST target did not start: {exc}")


def remember_token(ctx: ScanContext, header_file: str | None) -> None:
    """Keep the DAST token in memory so the report bundle can be searched for it."""
    if not header_file:
        return
    try:
        header = Path(header_file).read_text(encoding="utf-8").strip()
    except OSError:
        return
    _, _, value = header.partition(":")
    ctx.secrets_used.add(value.strip().removeprefix("Bearer").strip())


def update_latest(reports_base: Path, report_dir: Path) -> Path:
    """Point ``<reports_base>/latest`` at this run (a copy where symlinks fail)."""
    latest = reports_base / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    try:
        latest.symlink_to(report_dir.name, target_is_directory=True)
    except OSError:
        shutil.copytree(report_dir, latest)
    return latest
