"""``make loadtest-smoke``: the load test harness works end to end, with zero errors.

A real run (a throwaway full stack, the bare Flask and raw pymongo baselines, two
locust processes from .venv-loadtest, the report and its plots) in seconds per
stage. It asserts that everything was measured and written and that no request
failed; it never asserts a speed (the figures are the report's business).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOKEN_SHAPE = re.compile(rb"evt_[A-Za-z0-9]+_[A-Za-z0-9_-]{16,}")


def test_loadtest_smoke_measures_everything_without_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    result = subprocess.run(
        [sys.executable, "-m", "perf.loadtest", "--smoke", "--reports", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = (tmp_path / "latest").resolve()
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))

    measured = {stage["name"]: stage for stage in report["stages"]}
    expected = {"healthz", "list", "create", "bare-insert", "raw-pymongo", "read-heavy"}
    assert expected <= set(measured)
    assert any(name.startswith("mix-") for name in measured)
    assert any(name.startswith("ladder-") for name in measured)
    for stage in report["stages"]:
        assert stage["requests"] > 0, stage["name"]
        assert stage["errors"] == 0, (stage["name"], stage["statuses"])
    # The batch endpoint is measured when the API has it, and otherwise said to be missing.
    assert ("batch" in measured) == report["batch"]["available"]
    if not report["batch"]["available"]:
        assert report["batch"]["status"] in (404, 405)
        assert "not available" in report["batch"]["note"]
    assert report["storage"]["collections"]["events"]["count"] > 0
    assert report["knee"] is not None

    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Goals" in text
    assert "x bare Flask" in text
    assert "x raw pymongo" in text
    assert text in result.stdout
    for plot in ("throughput.png", "latency.png", "latency-vs-load.png", "cpu.png"):
        assert (run_dir / plot).read_bytes().startswith(PNG_MAGIC), plot
    for run in ("closed-loop", "paced"):
        assert (run_dir / f"locust-{run}.html").stat().st_size > 0
        assert (run_dir / f"locust-{run}_stats.csv").stat().st_size > 0
    # The API token the load generator used is in no file of the report.
    for path in run_dir.iterdir():
        assert not TOKEN_SHAPE.search(path.read_bytes()), path.name
