"""Everything secgate writes after the gate has decided.

Order matters: SARIF, JUnit and Markdown first, then the manifest of those,
then the HTML report (which shows the manifest), and finally manifest.json,
which also covers the HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from secgate import changes
from secgate import results as stage_results
from secgate.controls import Verdict
from secgate.gate import GateVerdict
from secgate.model import StageResult
from secgate.pipeline import RunInfo
from secgate.reports import html, junit, manifest, markdown, sarif, summary
from secgate.waivers import Waiver


def write_all(
    info: RunInfo,
    results: list[StageResult],
    verdict: GateVerdict,
    waivers: list[Waiver],
    now: dt.datetime,
) -> list[Path]:
    """Write every report into ``info.report_dir`` and return their paths."""
    out = info.report_dir
    written = sarif.write_tool_sarifs(out, results, info.root)
    if info.config_review is not None:
        written.append(_write_json(out / "config-review.json", info.config_review.to_json()))
    if info.test_results_file is not None:
        (out / "tests").mkdir(exist_ok=True)
        written.append(
            Path(shutil.copy2(info.test_results_file, out / "tests" / "junit-tests.xml"))
        )
    document = changes.findings_document(info.run_id, info.stages, verdict)
    written.append(_write_json(out / changes.FINDINGS_FILE, document))
    stage_data = stage_results.document(info.run_id, info.commit, results, out)
    written.append(_write_json(out / stage_results.RESULTS_FILE, stage_data))
    verdicts = summary.control_verdicts(info, results, verdict)
    written.append(_write_json(out / "controls.json", _controls_json(verdicts)))
    written.append(sarif.write_merged(out / "secgate.sarif", results, verdict, waivers, info.root))
    written.append(junit.write(out / "junit.xml", results, verdict))
    written.append(markdown.write(out / "summary.md", info, results, verdict))
    artifacts = manifest.collect(out, exclude={"manifest.json", "report.html"})
    written.append(html.write(out / "report.html", info, results, verdict, waivers, artifacts, now))
    written.append(manifest.write(out / "manifest.json", info, out))
    return written


def _write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def _controls_json(verdicts: list[Verdict]) -> dict[str, Any]:
    return {
        "controls": [
            {
                "id": v.control.id,
                "statement": v.control.statement,
                "source": list(v.control.source),
                "status": v.status,
                "evidence": list(v.evidence),
            }
            for v in verdicts
        ]
    }
