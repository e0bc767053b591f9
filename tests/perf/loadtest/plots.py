"""The load test's PNG plots, drawn from report.json by matplotlib (Agg backend, no display).

Runs in .venv-loadtest (where matplotlib is): ``python plots.py report.json OUT_DIR``.
It imports nothing from the repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global state, Agg renders the PNGs

OBJECTIVE_MS = 25.0
CPU_GROUPS = ("api", "mongod", "locust", "bare-flask", "raw-pymongo", "openbao", "machine")


def new_figure(width: float, height: float, rows: int) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(rows, 1, squeeze=False)


def stage_marks(axis: Any, report: dict[str, Any], run: dict[str, Any]) -> None:
    """A dotted line and the stage's name where each stage of ``run`` starts."""
    for stage in report["stages"]:
        if stage["name"] not in run["stages"] or stage["name"].startswith("peak-ramp-"):
            continue
        for start, _ in stage["windows"]:
            x = start - run["origin"]
            axis.axvline(x, color="grey", linestyle=":", linewidth=0.7)
            axis.annotate(
                stage["name"],
                (x, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=6,
                color="grey",
            )


def runs_with_timeline(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["locust_runs"] if report["timeline"].get(r["label"])]


def throughput(report: dict[str, Any], out: Path) -> None:
    runs = runs_with_timeline(report)
    figure, axes = new_figure(11, 3.2 * len(runs), len(runs))
    for axis, run in zip(axes[:, 0], runs, strict=True):
        rows = report["timeline"][run["label"]]
        t = [r["t"] for r in rows]
        axis.plot(t, [r["rate"] for r in rows], label="requests/s", linewidth=1)
        axis.plot(t, [r["events"] for r in rows], label="events written/s", linewidth=1)
        errors = [r["errors"] for r in rows]
        if any(errors):
            axis.bar(t, errors, color="red", label="errors/s")
        stage_marks(axis, report, run)
        axis.set_title(f"throughput over time: {run['label']}", fontsize=9)
        axis.set_xlabel("seconds since the run started")
        axis.set_ylabel("per second")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out / "throughput.png", dpi=110)


def latency(report: dict[str, Any], out: Path) -> None:
    runs = runs_with_timeline(report)
    figure, axes = new_figure(11, 3.2 * len(runs), len(runs))
    for axis, run in zip(axes[:, 0], runs, strict=True):
        rows = [r for r in report["timeline"][run["label"]] if r["p50"] is not None]
        t = [r["t"] for r in rows]
        axis.plot(t, [r["p50"] for r in rows], label="p50", linewidth=1)
        axis.plot(t, [r["p99"] for r in rows], label="p99", linewidth=1)
        axis.axhline(
            OBJECTIVE_MS, color="red", linestyle="--", linewidth=0.8, label="p99 objective"
        )
        axis.set_yscale("log")
        stage_marks(axis, report, run)
        axis.set_title(f"latency over time (per second): {run['label']}", fontsize=9)
        axis.set_xlabel("seconds since the run started")
        axis.set_ylabel("ms (log)")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out / "latency.png", dpi=110)


def latency_vs_load(report: dict[str, Any], out: Path) -> None:
    """Left: users doubling (closed loop), latency and throughput. Right: latency vs paced rate."""
    figure = Figure(figsize=(12, 4.8))
    knee_axis, ladder_axis = figure.subplots(1, 2)
    steps = [s for s in report["stages"] if s["phase"] == "knee" and s["requests"]]
    if steps:
        users = [s["users"] for s in steps]
        for key, style in (("p50", "-"), ("p95", "--"), ("p99", "-.")):
            knee_axis.plot(users, [s[key] for s in steps], style, marker="o", label=key)
        knee_axis.set_xscale("log", base=2)
        knee_axis.set_xticks(users, [str(u) for u in users])
        knee_axis.minorticks_off()
        knee_axis.set_yscale("log")
        knee_axis.set_xlabel("concurrent users (closed loop, no think time)")
        knee_axis.set_ylabel("latency ms (log)")
        rate_axis = knee_axis.twinx()
        rate_axis.plot(
            users,
            [s["rate"] for s in steps],
            color="black",
            marker="s",
            linewidth=1.5,
            label="requests/s",
        )
        rate_axis.set_ylabel("requests/s")
        rate_axis.set_ylim(bottom=0)
        rate_axis.legend(fontsize=7, loc="lower right")
        knee = report.get("knee")
        if knee:
            knee_axis.axvline(
                knee["users"], color="grey", linestyle=":", label=f"knee ({knee['users']} users)"
            )
    knee_axis.axhline(
        OBJECTIVE_MS, color="red", linestyle="--", linewidth=0.8, label="p99 objective"
    )
    knee_axis.set_title("steady mix, users doubling: latency and throughput", fontsize=9)
    knee_axis.legend(fontsize=7, loc="upper left")

    rungs = [s for s in report["stages"] if s["phase"] == "ladder" and s["requests"]]
    if rungs:
        x = [s["rate"] for s in rungs]
        for key, style in (("p50", "-"), ("p95", "--"), ("p99", "-.")):
            ladder_axis.plot(x, [s[key] for s in rungs], style, marker="s", label=key)
        for s in rungs:
            ladder_axis.annotate(
                s["name"].removeprefix("ladder-"),
                (s["rate"], s["p99"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(3, 3),
            )
        ladder_axis.set_yscale("log")
    ladder_axis.axhline(
        OBJECTIVE_MS, color="red", linestyle="--", linewidth=0.8, label="p99 objective"
    )
    ladder_axis.set_xlabel("steady mix requests/s achieved (paced; label: % of the maximum)")
    ladder_axis.set_ylabel("latency ms (log)")
    ladder_axis.set_title("steady mix, paced: latency vs rate", fontsize=9)
    ladder_axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out / "latency-vs-load.png", dpi=110)


def cpu(report: dict[str, Any], out: Path) -> None:
    rows = report["cpu"]
    figure, axes = new_figure(11, 4, 1)
    axis = axes[0, 0]
    if rows:
        origin = rows[0]["t"]
        for group in CPU_GROUPS:
            points = [(r["t"] - origin, r[group]) for r in rows if group in r]
            if points and any(v for _, v in points):
                axis.plot(*zip(*points, strict=True), label=group, linewidth=1)
    axis.set_title("CPU, % of one core (machine: every process on it)", fontsize=9)
    axis.set_xlabel("seconds since sampling started")
    axis.set_ylabel("% of one core")
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out / "cpu.png", dpi=110)


def main() -> None:
    report = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(sys.argv[2])
    throughput(report, out)
    latency(report, out)
    latency_vs_load(report, out)
    cpu(report, out)


if __name__ == "__main__":
    main()
