"""``python -m perf.loadtest [--quick | --smoke] [--sizing docs/sizing.md] [--render DIR]``.

    make loadtest                          # about 7 minutes: every phase
    make loadtest LOADTEST_ARGS=--quick    # about 2 minutes
    make loadtest-smoke                    # under a minute; fails on any error (CI)
    make sizing                            # a full run that also writes docs/sizing.md

The report goes to ``loadtest/reports/<run>/`` (``latest`` links to the last one):
report.md (also printed), report.json, PNG plots, the raw samples, locust's CSV
and HTML reports, the logs of the API, the baseline and locust.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from perf.loadtest import analysis, harness, plan, report, sizing

DEFAULT_REPORTS = harness.REPO / "loadtest" / "reports"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perf.loadtest", description=__doc__.splitlines()[0]
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="shorter stages, fewer steps (~2 min)")
    speed.add_argument(
        "--smoke", action="store_true", help="the CI smoke: seconds per stage, fails on any error"
    )
    parser.add_argument(
        "--reports", type=Path, default=DEFAULT_REPORTS, help="where run directories go"
    )
    parser.add_argument(
        "--sizing", type=Path, help="also write the sizing document here (docs/sizing.md)"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RUN_DIR",
        help="re-render report.md, plots (and --sizing) from RUN_DIR/report.json; no run",
    )
    return parser.parse_args(argv)


def draw_plots(run_dir: Path) -> list[str]:
    """The PNGs, drawn by matplotlib in .venv-loadtest (Agg backend) from report.json."""
    result = subprocess.run(
        [
            str(harness.loadtest_python()),
            str(harness.HERE / "plots.py"),
            str(run_dir / "report.json"),
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise harness.HarnessError(f"plots failed: {result.stderr[-1000:]}")
    return sorted(p.name for p in run_dir.glob("*.png"))


def finish(run_dir: Path, data: dict[str, Any], sizing_file: Path | None) -> str:
    report_json = run_dir / "report.json"
    report_json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    logging.getLogger("loadtest").info("drawing the plots")
    data["plots"] = draw_plots(run_dir)
    report_json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    text = report.render(data)
    (run_dir / "report.md").write_text(text, encoding="utf-8")
    if sizing_file is not None:
        sizing_file.write_text(sizing.render(data), encoding="utf-8")
    return text


def link_latest(reports: Path, run_dir: Path) -> None:
    latest = reports / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name)


def smoke_failures(data: dict[str, Any]) -> list[str]:
    """What makes the smoke fail: any error anywhere, a missing plot or locust report."""
    failures = [
        f"{s['name']}: {s['errors']} errors {s['statuses']}" for s in data["stages"] if s["errors"]
    ]
    failures += [f"{s['name']}: no request measured" for s in data["stages"] if not s["requests"]]
    if len(data.get("plots", [])) < 4:
        failures.append(f"plots missing: {data.get('plots')}")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s loadtest: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("devstack", "eventsvc", "hvac", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.render is not None:
            data = json.loads((args.render / "report.json").read_text(encoding="utf-8"))
            steps = [SimpleNamespace(**s) for s in data["stages"] if s["phase"] == "knee"]
            data["knee"] = analysis.to_json(analysis.find_knee(steps))
            print(finish(args.render, data, args.sizing))
            return 0
        mode = plan.MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
        name = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{mode.name}"
        run_dir = args.reports / name
        run_dir.mkdir(parents=True)
        started = time.monotonic()
        data = harness.measure(mode, run_dir)
        data = analysis.to_json(data)
        text = finish(run_dir, data, args.sizing)
        link_latest(args.reports, run_dir)
        print(text)
        print(f"report: {run_dir} ({time.monotonic() - started:.0f} s)")
    except harness.HarnessError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    if args.smoke:
        failures = smoke_failures(data)
        for failure in failures:
            print(f"loadtest smoke: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
