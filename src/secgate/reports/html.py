"""report.html: one self-contained page for auditors (inline CSS, no script, no assets).

Every value that reaches the page goes through :func:`esc`: findings carry
text chosen by attackers (URLs, payloads, file contents), and this page is
opened by people with access to everything.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from pathlib import Path

from secgate.configreview import ConfigReview
from secgate.gate import GateVerdict
from secgate.history import Changes
from secgate.model import Finding, StageResult
from secgate.pipeline import RunInfo
from secgate.reports.summary import SEVERITIES, control_verdicts, controls_line, stage_rows
from secgate.stages import STAGE_NAMES
from secgate.waivers import Waiver

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1a1a1a;max-width:90em}
h1 .pass{color:#11693a} h1 .fail{color:#b00020}
table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f0f0f0} code{font-size:.85em;word-break:break-all}
li.fail{color:#b00020;font-weight:bold}
.blocking{background:#fde7ea} .waived{background:#fff8e1} .notrun{background:#fde7ea}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """An HTML table; cells must already be escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for n, row in enumerate(rows):
        css = f' class="{classes[n]}"' if classes and classes[n] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(
    info: RunInfo,
    results: list[StageResult],
    verdict: GateVerdict,
    waivers: list[Waiver],
    artifacts: dict[str, str],
    now: dt.datetime,
) -> str:
    parts = [
        _header(info, verdict, now, controls_line(info, control_verdicts(info, results, verdict))),
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
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>secgate report {esc(info.run_id)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def _header(info: RunInfo, verdict: GateVerdict, now: dt.datetime, controls: str) -> str:
    word, css = ("PASSED", "pass") if verdict.passed else ("FAILED", "fail")
    finished = info.finished_at or now
    rows = [
        ["run", f"<code>{esc(info.run_id)}</code>"],
        ["git commit", f"<code>{esc(info.commit)}</code>"],
        ["scanned tree", f"<code>{esc(info.root)}</code>"],
        ["started (UTC)", esc(info.started_at.isoformat(timespec="seconds"))],
        ["finished (UTC)", esc(finished.isoformat(timespec="seconds"))],
        ["report written (UTC)", esc(now.isoformat(timespec="seconds"))],
        ["stages requested", esc(", ".join(info.stages))],
        ["controls", esc(controls)],
    ]
    if info.provenance is not None:
        rows += [
            ["secgate", esc(info.provenance.secgate)],
            ["tree", esc(info.provenance.tree)],
            ["configuration in force (sha256)", _config_hashes(info.provenance.config)],
        ]
    if info.changes is not None:
        rows.append(["since the previous run", _changes(info.changes)])
    if verdict.advisory_data is not None:
        rows.insert(0, ["advisory data", f"<b>{esc(verdict.advisory_data.summary())}</b>"])
    if info.config_review is not None:
        rows.insert(0, ["gate configuration", _config_review(info.config_review)])
    return f'<h1>secgate: <span class="{css}">{word}</span></h1>' + table(["", ""], rows)


def _config_hashes(config: dict[str, str]) -> str:
    return "<br>".join(
        f"<code>{esc(name)}</code> <code>{esc(digest)}</code>" for name, digest in config.items()
    )


def _changes(changes: Changes) -> str:
    """The counts, then each new and fixed finding (still-open ones are in the findings table)."""
    items = [f"<li><b>new</b>: {esc(_finding_line(f))}</li>" for f in changes.new]
    items += [f"<li>fixed: {esc(_finding_line(f))}</li>" for f in changes.fixed]
    return esc(changes.summary()) + (f"<ul>{''.join(items)}</ul>" if items else "")


def _finding_line(entry: dict[str, str]) -> str:
    rule = f"{entry['stage']} {entry['tool']} {entry['rule']}"
    return f"{rule} ({entry['severity']}) {entry['location']}"


def _config_review(review: ConfigReview) -> str:
    """Relaxations of the gate's own configuration, first thing a reviewer reads."""
    items = "".join(
        f'<li class="{"fail" if c.relaxes else ""}">{esc(c.line())}</li>'
        for c in sorted(review.changes, key=lambda c: not c.relaxes)
    )
    return f"<b>{esc(review.headline())}</b>" + (f"<ul>{items}</ul>" if items else "")


def _reasons(verdict: GateVerdict) -> str:
    if not verdict.reasons:
        return "<p>No blocking finding, no stage failure, no waiver problem.</p>"
    items = "".join(f"<li>{esc(reason)}</li>" for reason in verdict.reasons)
    return f"<h2>Why the gate failed</h2><ul>{items}</ul>"


def _stages(results: list[StageResult], verdict: GateVerdict) -> str:
    rows, classes = [], []
    for row in stage_rows(results, verdict):
        rows.append(
            [
                esc(row.stage),
                esc(row.tools),
                *[esc(row.counts[s]) for s in SEVERITIES],
                f"<b>{esc(row.verdict)}</b>",
                esc(f"{row.seconds:.1f}"),
                "<br>".join(esc(note) for note in row.notes),
            ]
        )
        classes.append("" if row.verdict == "pass" else "notrun")
    headers = ["stage", "tools", *[s.name.lower() for s in SEVERITIES], "verdict", "s", "notes"]
    return "<h2>Stages</h2>" + table(headers, rows, classes)


def _controls(info: RunInfo, results: list[StageResult], verdict: GateVerdict) -> str:
    """Control -> tests, rules, scans -> what this run showed; unproven ones first."""
    verdicts = control_verdicts(info, results, verdict)
    rows, classes = [], []
    for v in sorted(verdicts, key=lambda v: v.proven):
        rows.append(
            [
                f"<code>{esc(v.control.id)}</code>",
                esc(v.control.statement),
                f"<b>{esc(v.status)}</b>",
                "<br>".join(esc(line) for line in v.evidence),
                esc("; ".join(v.control.source)),
            ]
        )
        classes.append("" if v.proven else "notrun")
    headers = ["id", "control", "result", "evidence (this run)", "source"]
    line = f"<p>{esc(controls_line(info, verdicts))}</p>"
    return "<h2>Controls</h2>" + line + (table(headers, rows, classes) if rows else "")


def _scanners(results: list[StageResult]) -> str:
    """Which scanners ran (with versions) and which did not, stage by stage."""
    rows = []
    by_stage = {r.stage: r for r in results}
    for stage in STAGE_NAMES:
        result = by_stage.get(stage)
        if result is None:
            rows.append([esc(stage), "-", "not requested in this run: <b>not run</b>"])
            continue
        ran = "<br>".join(f"{esc(t)} {esc(v)}" for t, v in sorted(result.tool_versions.items()))
        missing = [esc(n) for n in result.notes if "not run" in n]
        if not result.ran:
            missing.append(f"<b>stage did not run</b>: {esc(result.error)}")
        rows.append([esc(stage), ran or "-", "<br>".join(missing) or "-"])
    return "<h2>Scanners</h2>" + table(["stage", "ran (version)", "not run"], rows)


def _owasp(results: list[StageResult]) -> str:
    counts = Counter(f.owasp or "unmapped" for r in results for f in r.findings)
    rows = [[esc(category), esc(n)] for category, n in sorted(counts.items())]
    return "<h2>Findings by OWASP Top 10 category</h2>" + table(["category", "findings"], rows)


def _status(finding: Finding, verdict: GateVerdict) -> str:
    for stage in verdict.stages:
        if finding in stage.blocking:
            return "blocking"
        if finding in stage.waived:
            return "waived"
    return "below threshold"


def _findings(verdict: GateVerdict) -> str:
    findings = [f for s in verdict.stages for f in (*s.blocking, *s.waived, *s.below_threshold)]
    findings.sort(key=lambda f: (f.stage, -f.severity, f.location))
    rows, classes = [], []
    for f in findings:
        status = _status(f, verdict)
        rows.append(
            [
                esc(f.stage),
                esc(f.severity.name.lower()),
                esc(f.confidence.name.lower()),
                esc(f"{f.tool} {f.rule_id}"),
                f"<code>{esc(f.location)}</code>",
                esc(f.message),
                esc(f.help),
                esc(f.owasp or ""),
                esc(f.cwe or ""),
                esc(status),
                f"<code>{esc(f.fingerprint)}</code>",
            ]
        )
        classes.append(status if status != "below threshold" else "")
    headers = ["stage", "severity", "confidence", "rule", "location", "message", "fix"]
    headers += ["OWASP", "CWE", "gate", "fingerprint"]
    return f"<h2>Findings ({len(findings)})</h2>" + table(headers, rows, classes)


def _waiver_state(waiver: Waiver, verdict: GateVerdict) -> str:
    if waiver in verdict.expired_waivers:
        return "EXPIRED"
    if waiver in verdict.unused_waivers:
        return "UNUSED"
    if waiver in verdict.used_waivers:
        return "used"
    return "not checked (its stage did not run)"


def _waivers(waivers: list[Waiver], verdict: GateVerdict) -> str:
    rows = [
        [
            f"<code>{esc(w.fingerprint)}</code>",
            esc(" / ".join(x for x in (w.stage, w.tool, w.rule) if x)),
            esc(w.owner),
            esc(w.expires.isoformat()),
            esc(w.reason),
            esc(_waiver_state(w, verdict)),
        ]
        for w in waivers
    ]
    headers = ["fingerprint", "stage / tool / rule", "owner", "expires", "reason", "status"]
    return f"<h2>Waivers ({len(waivers)})</h2>" + table(headers, rows)


def _metadata(results: list[StageResult]) -> str:
    rows = [
        [esc(r.stage), esc(key), esc(value)]
        for r in results
        for key, value in sorted(r.metadata.items())
    ]
    return "<h2>Advisory data and stage metadata</h2>" + (
        table(["stage", "key", "value"], rows) if rows else "<p>None reported.</p>"
    )


def _manifest(artifacts: dict[str, str]) -> str:
    rows = [[f"<code>{esc(p)}</code>", f"<code>{esc(h)}</code>"] for p, h in artifacts.items()]
    note = (
        "<p>SHA-256 of every artifact of this run. This page and manifest.json cannot list "
        "their own hash; manifest.json lists this page's.</p>"
    )
    return "<h2>Artifacts</h2>" + note + table(["file", "sha256"], rows)


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
