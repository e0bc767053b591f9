"""summary.md: the gate in a few lines of Markdown, for $GITHUB_STEP_SUMMARY and PR comments.

Finding text comes from scanners and, through DAST and code, from attackers;
it is put in code spans with backticks removed so it cannot inject Markdown
or HTML into a PR page.
"""

from __future__ import annotations

from pathlib import Path

from secgate.configreview import ConfigReview
from secgate.gate import GateVerdict
from secgate.model import StageResult
from secgate.pipeline import RunInfo
from secgate.reports.summary import SEVERITIES, control_verdicts, controls_line, stage_rows


def code(text: str, limit: int = 300) -> str:
    """Inline code span that cannot be broken out of, cut at ``limit`` characters."""
    cleaned = " ".join(text.replace("`", "'").split())
    return f"`{cleaned[:limit]}`" if cleaned else ""


def render(info: RunInfo, results: list[StageResult], verdict: GateVerdict) -> str:
    lines = [
        f"## secgate: {'PASSED' if verdict.passed else 'FAILED'}",
        "",
        f"Run `{info.run_id}` on commit `{info.commit}`.",
        "",
        *config_review_lines(info),
        *([code(verdict.advisory_data.summary(), 1000), ""] if verdict.advisory_data else []),
        code(controls_line(info, control_verdicts(info, results, verdict)), 2000),
        "",
        *([f"- {code(info.changes.summary(), 1000)}"] if info.changes else []),
        *[f"- {code(line, 2000)}" for line in (info.provenance.lines() if info.provenance else [])],
        "",
        "| stage | tools | " + " | ".join(s.name.lower() for s in SEVERITIES) + " | verdict |",
        "|---|---|" + "---:|" * len(SEVERITIES) + "---|",
    ]
    for row in stage_rows(results, verdict):
        counts = " | ".join(str(row.counts[s]) for s in SEVERITIES)
        lines.append(f"| {row.stage} | {code(row.tools)} | {counts} | **{row.verdict}** |")
    if verdict.reasons:
        lines += ["", "### Why the gate failed", ""]
    for stage in verdict.stages:
        if not stage.ran:
            lines.append(f"- stage **{stage.stage}** did not run: {code(stage.error or '')}")
        for f in stage.blocking:
            lines.append(
                f"- {code(f.location)} {code(f.tool + ' ' + f.rule_id)} "
                f"({f.severity.name.lower()}): {code(f.message)}  \n"
                f"  fix: {code(f.help)}  \n  fingerprint {code(f.fingerprint)}"
            )
    for w in verdict.expired_waivers:
        lines.append(f"- waiver {code(w.fingerprint)} ({code(w.owner)}) expired on {w.expires}")
    for w in verdict.unused_waivers:
        lines.append(f"- waiver {code(w.fingerprint)} ({code(w.owner)}) matched no finding")
    if verdict.advisory_data is not None and verdict.advisory_data.problem:
        lines.append(f"- {code(verdict.advisory_data.problem)}")
    lines += [f"- {code(problem)}" for problem in verdict.acknowledgement_problems]
    lines += [f"- {code(problem)}" for problem in verdict.bundle_problems]
    lines += ["", "Full report: `report.html`, SARIF: `secgate.sarif` in the run's artifacts.", ""]
    return "\n".join(lines)


def config_review_lines(info: RunInfo) -> list[str]:
    """The gate's configuration compared with the base branch: relaxations first."""
    return [] if info.config_review is None else config_review_markdown(info.config_review)


def config_review_markdown(review: ConfigReview) -> list[str]:
    """The headline in bold, then one line per change, relaxations first."""
    lines = [f"**{code(review.headline(), 1000)}**", ""]
    for change in sorted(review.changes, key=lambda c: not c.relaxes):
        lines.append(f"- {code(change.line(), 1000)}")
    return [*lines, ""] if review.changes else lines


def write(path: Path, info: RunInfo, results: list[StageResult], verdict: GateVerdict) -> Path:
    path.write_text(render(info, results, verdict), encoding="utf-8")
    return path
