"""report.html: one self-contained page for auditors (inline CSS, no script, no assets).

The page comes from ``templates/report.html.j2``, rendered by Jinja2 with
autoescaping on: findings carry text chosen by attackers (URLs, payloads, file
contents), and this page is opened by people with access to everything. This
module only gathers values as plain text (:class:`Piece`); it never builds markup.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2

from secgate.changes import Changes
from secgate.configreview import ConfigReview
from secgate.gate import GateVerdict
from secgate.model import Finding, StageResult
from secgate.pipeline import RunInfo
from secgate.reports.summary import SEVERITIES, control_verdicts, controls_line, stage_rows
from secgate.stages import STAGE_NAMES
from secgate.waivers import Waiver

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1a1a1a;max-width:90em}
h1 .pass{color:#11693a} h1 .fail{color:#b00020} .fail{color:#b00020}
table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.9em;
overflow-wrap:anywhere}
th{background:#f0f0f0} code{font-size:.85em;word-break:break-all}
.blocking{background:#fde7ea} .waived{background:#fff8e1} .notrun{background:#fde7ea}
"""


@dataclass(frozen=True)
class Piece:
    """One run of text in a cell; ``style`` is "", "code", "bold" or "alert"."""

    text: str
    style: str = ""


def text(value: object, style: str = "") -> list[Piece]:
    """A cell holding one piece."""
    return [Piece(str(value), style)]


@dataclass(frozen=True)
class Row:
    cells: list[list[Piece]]  # each cell: pieces shown one per line
    css: str = ""


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[Row]


@dataclass(frozen=True)
class Section:
    title: str
    intro: list[Piece] = field(default_factory=list)
    items: list[Piece] = field(default_factory=list)
    table: Table | None = None


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.html.j2")


def render(
    info: RunInfo,
    results: list[StageResult],
    verdict: GateVerdict,
    waivers: list[Waiver],
    artifacts: dict[str, str],
    now: dt.datetime,
) -> str:
    sections = [
        _reasons(verdict),
        _stages(results, verdict),
        _controls(info, results, verdict),
        _scanners(results),
        _owasp(results),
        _findings(verdict),
        _waivers(waivers, verdict),
        _metadata(results),
        _manifest(artifacts),
    ]
    return _template().render(
        css=CSS,
        run_id=info.run_id,
        passed=verdict.passed,
        header=_header(info, results, verdict, now),
        sections=sections,
    )


def _header(
    info: RunInfo, results: list[StageResult], verdict: GateVerdict, now: dt.datetime
) -> Table:
    """The first screen: what an auditor asks before anything else."""
    finished = info.finished_at or now
    rows: list[list[list[Piece]]] = []
    if info.config_review is not None:
        rows.append([text("gate configuration"), _config_review(info.config_review)])
    if verdict.advisory_data is not None:
        rows.append([text("advisory data"), text(verdict.advisory_data.summary(), "bold")])
    rows += [
        [text("controls"), text(controls_line(info, control_verdicts(info, results, verdict)))],
        [text("run"), text(info.run_id, "code")],
        [text("git commit"), text(info.commit, "code")],
        [text("scanned tree"), text(info.root, "code")],
        [text("started (UTC)"), text(info.started_at.isoformat(timespec="seconds"))],
        [text("finished (UTC)"), text(finished.isoformat(timespec="seconds"))],
        [text("report written (UTC)"), text(now.isoformat(timespec="seconds"))],
        [text("stages requested"), text(", ".join(info.stages))],
    ]
    if info.provenance is not None:
        hashes = info.provenance.config.items()
        config = [Piece(f"{name} {digest}", "code") for name, digest in hashes]
        rows += [
            [text("secgate"), text(info.provenance.secgate)],
            [text("tree"), text(info.provenance.tree)],
            [text("configuration in force (sha256)"), config],
        ]
    if info.changes is not None:
        rows.append([text("since the previous run"), _changes(info.changes)])
    return Table(["", ""], [Row(cells) for cells in rows])


def _changes(changes: Changes) -> list[Piece]:
    """The counts, then each new and fixed finding (still-open ones are in the findings table)."""
    pieces = [Piece(changes.summary())]
    pieces += [Piece(f"new: {_finding_line(f)}", "alert") for f in changes.new]
    pieces += [Piece(f"fixed: {_finding_line(f)}") for f in changes.fixed]
    return pieces


def _finding_line(entry: dict[str, str]) -> str:
    rule = f"{entry['stage']} {entry['tool']} {entry['rule']}"
    return f"{rule} ({entry['severity']}) {entry['location']}"


def _config_review(review: ConfigReview) -> list[Piece]:
    """Relaxations of the gate's own configuration, first thing a reviewer reads."""
    changes = sorted(review.changes, key=lambda c: not c.relaxes)
    return [Piece(review.headline(), "bold")] + [
        Piece(c.line(), "alert" if c.relaxes else "") for c in changes
    ]


def _reasons(verdict: GateVerdict) -> Section:
    if not verdict.reasons:
        clean = Piece("No blocking finding, no stage failure, no waiver problem.")
        return Section("", intro=[clean])
    return Section("Why the gate failed", items=[Piece(reason) for reason in verdict.reasons])


def _stages(results: list[StageResult], verdict: GateVerdict) -> Section:
    rows = [
        Row(
            [
                text(row.stage),
                text(row.tools),
                *[text(row.counts[s]) for s in SEVERITIES],
                text(row.verdict, "bold"),
                text(f"{row.seconds:.1f}"),
                [Piece(note) for note in row.notes],
            ],
            "" if row.verdict == "pass" else "notrun",
        )
        for row in stage_rows(results, verdict)
    ]
    headers = ["stage", "tools", *[s.name.lower() for s in SEVERITIES], "verdict", "s", "notes"]
    return Section("Stages", table=Table(headers, rows))


def _controls(info: RunInfo, results: list[StageResult], verdict: GateVerdict) -> Section:
    """Control -> tests, rules, scans -> what this run showed; unproven ones first."""
    verdicts = control_verdicts(info, results, verdict)
    rows = [
        Row(
            [
                text(v.control.id, "code"),
                text(v.control.statement),
                text(v.status, "bold"),
                [Piece(line) for line in v.evidence],
                text("; ".join(v.control.source)),
            ],
            "" if v.proven else "notrun",
        )
        for v in sorted(verdicts, key=lambda v: v.proven)
    ]
    headers = ["id", "control", "result", "evidence (this run)", "source"]
    return Section(
        "Controls",
        intro=[Piece(controls_line(info, verdicts))],
        table=Table(headers, rows) if rows else None,
    )


def _scanners(results: list[StageResult]) -> Section:
    """Which scanners ran (with versions) and which did not, stage by stage."""
    rows = []
    by_stage = {r.stage: r for r in results}
    for stage in STAGE_NAMES:
        result = by_stage.get(stage)
        if result is None:
            rows.append(Row([text(stage), text("-"), text("not requested in this run: not run")]))
            continue
        ran = [Piece(f"{t} {v}") for t, v in sorted(result.tool_versions.items())]
        missing = [Piece(n) for n in result.notes if "not run" in n]
        if not result.ran:
            missing.append(Piece(f"stage did not run: {result.error}", "alert"))
        rows.append(Row([text(stage), ran or text("-"), missing or text("-")]))
    return Section("Scanners", table=Table(["stage", "ran (version)", "not run"], rows))


def _owasp(results: list[StageResult]) -> Section:
    counts = Counter(f.owasp or "unmapped" for r in results for f in r.findings)
    rows = [Row([text(category), text(n)]) for category, n in sorted(counts.items())]
    return Section("Findings by OWASP Top 10 category", table=Table(["category", "findings"], rows))


def _status(finding: Finding, verdict: GateVerdict) -> str:
    for stage in verdict.stages:
        if finding in stage.blocking:
            return "blocking"
        if finding in stage.waived:
            return "waived"
    return "below threshold"


def _findings(verdict: GateVerdict) -> Section:
    findings = [f for s in verdict.stages for f in (*s.blocking, *s.waived, *s.below_threshold)]
    findings.sort(key=lambda f: (f.stage, -f.severity, f.location))
    rows = []
    for f in findings:
        status = _status(f, verdict)
        rows.append(
            Row(
                [
                    text(f.stage),
                    text(f.severity.name.lower()),
                    text(f.confidence.name.lower()),
                    text(f"{f.tool} {f.rule_id}"),
                    text(f.location, "code"),
                    text(f.message),
                    text(f.help),
                    text(f.owasp or ""),
                    text(f.cwe or ""),
                    text(status),
                    text(f.fingerprint, "code"),
                ],
                status if status != "below threshold" else "",
            )
        )
    headers = ["stage", "severity", "confidence", "rule", "location", "message", "fix"]
    headers += ["OWASP", "CWE", "gate", "fingerprint"]
    return Section(f"Findings ({len(findings)})", table=Table(headers, rows))


def _waiver_state(waiver: Waiver, verdict: GateVerdict) -> str:
    if waiver in verdict.expired_waivers:
        return "EXPIRED"
    if waiver in verdict.unused_waivers:
        return "UNUSED"
    if waiver in verdict.used_waivers:
        return "used"
    return "not checked (its stage did not run)"


def _waivers(waivers: list[Waiver], verdict: GateVerdict) -> Section:
    rows = [
        Row(
            [
                text(w.fingerprint, "code"),
                text(" / ".join(x for x in (w.stage, w.tool, w.rule) if x)),
                text(w.owner),
                text(w.expires.isoformat()),
                text(w.reason),
                text(_waiver_state(w, verdict)),
            ]
        )
        for w in waivers
    ]
    headers = ["fingerprint", "stage / tool / rule", "owner", "expires", "reason", "status"]
    return Section(f"Waivers ({len(waivers)})", table=Table(headers, rows))


def _metadata(results: list[StageResult]) -> Section:
    rows = [
        Row([text(r.stage), text(key), text(value)])
        for r in results
        for key, value in sorted(r.metadata.items())
    ]
    if not rows:
        return Section("Advisory data and stage metadata", intro=[Piece("None reported.")])
    table = Table(["stage", "key", "value"], rows)
    return Section("Advisory data and stage metadata", table=table)


def _manifest(artifacts: dict[str, str]) -> Section:
    rows = [Row([text(p, "code"), text(h, "code")]) for p, h in artifacts.items()]
    note = Piece(
        "SHA-256 of every artifact of this run. This page and manifest.json cannot list "
        "their own hash; manifest.json lists this page's."
    )
    return Section("Artifacts", intro=[note], table=Table(["file", "sha256"], rows))


def write(
    path: Path,
    info: RunInfo,
    results: list[StageResult],
    verdict: GateVerdict,
    waivers: list[Waiver],
    artifacts: dict[str, str],
    now: dt.datetime,
) -> Path:
    path.write_text(render(info, results, verdict, waivers, artifacts, now), encoding="utf-8")
    return path
