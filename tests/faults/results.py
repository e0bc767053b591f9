"""The fault tests' measurements, one JSON file per fault in ``build/faults/``.

:mod:`faults.report` renders them as the "Faults" table of docs/reliability.md.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faults.load import Verdict, WriteLoad

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "build" / "faults"


@dataclass(frozen=True)
class FaultResult:
    """One row of the table: what was broken, what the writers saw, what the database holds."""

    fault: str
    title: str
    test: str
    attempted: int
    acknowledged: int
    lost: int
    duplicated: int
    recovery_s: float | None
    """From the fault (or its repair, when recovery needs one) to the first write acknowledged."""
    max_latency_s: float
    max_error_latency_s: float
    answers: dict[str, int]
    replayed: int = 0
    """Writes whose first commit's answer was lost (the retry got the replay)."""
    notes: str = ""
    measured_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    machine: str = field(default_factory=lambda: f"{platform.system()} {platform.machine()}")


def record(
    fault: str,
    title: str,
    test: str,
    load: WriteLoad,
    verdict: Verdict,
    recovery_s: float | None,
    notes: str = "",
) -> FaultResult:
    """Write ``build/faults/<fault>.json`` and return the row."""
    result = FaultResult(
        fault=fault,
        title=title,
        test=test,
        attempted=verdict.attempted,
        acknowledged=verdict.acknowledged,
        lost=len(verdict.lost),
        duplicated=len(verdict.duplicated),
        recovery_s=None if recovery_s is None else round(recovery_s, 2),
        max_latency_s=round(load.stats.max_latency_s, 2),
        max_error_latency_s=round(load.stats.max_error_latency_s, 2),
        answers=_answers(load),
        replayed=load.stats.replayed,
        notes=notes,
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{fault}.json"
    target.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return result


def _answers(load: WriteLoad) -> dict[str, int]:
    """Answers by status (or client error), the gateway's own 503s apart from the API's."""
    answers = dict(load.stats.statuses)
    if load.stats.gateway_no_backend:
        answers["503"] -= load.stats.gateway_no_backend
        answers["503 gateway"] = load.stats.gateway_no_backend
    return {key: value for key, value in sorted(answers.items()) if value}


def load_results(directory: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    """Every recorded row, in file-name order."""
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))
    ]
