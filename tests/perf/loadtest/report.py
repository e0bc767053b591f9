"""The run's report (report.md, printed too): figures, ratios to both baselines, goals met or not.

Made from report.json only, so ``python -m perf.loadtest --render DIR`` can redo it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

P99_OBJECTIVE_MS = 25.0
STEADY_PHASES = ("knee", "ladder")


def stage(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in report["stages"] if s["name"] == name), None)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if not value or not base:
        return "-"
    return f"{value / base:.2f}x"


@dataclass(frozen=True)
class Goal:
    text: str
    met: bool | None  # None: not measured (e.g. the batch endpoint is not there)
    figures: str

    @property
    def verdict(self) -> str:
        return {True: "met", False: "not met", None: "not available"}[self.met]


def rate_at_objective(report: dict[str, Any]) -> dict[str, Any] | None:
    """The highest steady-mix rate with p99 < 25 ms, no error and (paced) >= 90 % of the offer."""
    best = None
    for s in report["stages"]:
        if s["phase"] not in STEADY_PHASES or not s["requests"] or s["errors"]:
            continue
        if s["p99"] is None or s["p99"] >= P99_OBJECTIVE_MS:
            continue
        if s["offered_rate"] and s["rate"] < 0.9 * s["offered_rate"]:
            continue
        if best is None or s["rate"] > best["rate"]:
            best = s
    return best


def max_sustained(report: dict[str, Any]) -> dict[str, Any] | None:
    """The steady mix's highest measured throughput without errors (closed loop or paced)."""
    steady = [
        s
        for s in report["stages"]
        if s["phase"] in STEADY_PHASES and s["requests"] and not s["errors"]
    ]
    return max(steady, key=lambda s: s["rate"]) if steady else None


def goals(report: dict[str, Any]) -> list[Goal]:
    create, bare = stage(report, "create"), stage(report, "bare-insert")
    listing, healthz = stage(report, "list"), stage(report, "healthz")
    found: list[Goal] = []
    if create and bare and bare["rate"]:
        r = create["rate"] / bare["rate"]
        found.append(
            Goal(
                "secure single create >= 0.5x the bare Flask insert",
                r >= 0.5,
                f"{fmt(create['rate'])} vs {fmt(bare['rate'])} req/s = {r:.2f}x",
            )
        )
    if listing and healthz and healthz["rate"]:
        r = listing["rate"] / healthz["rate"]
        found.append(
            Goal(
                "authenticated list >= 0.7x /healthz over HTTPS",
                r >= 0.7,
                f"{fmt(listing['rate'])} vs {fmt(healthz['rate'])} req/s = {r:.2f}x",
            )
        )
    half = stage(report, "ladder-50%")
    top = max_sustained(report)
    if half and top:
        met = half["p99"] is not None and half["p99"] < P99_OBJECTIVE_MS and not half["errors"]
        found.append(
            Goal(
                f"p99 < {P99_OBJECTIVE_MS:g} ms at half of the maximum sustained rate",
                met,
                f"p99 {fmt(half['p99'])} ms at {fmt(half['rate'])} req/s achieved "
                f"({fmt(half['offered_rate'])} offered; maximum {fmt(top['rate'])} req/s, "
                f"{top['name']})",
            )
        )
    steady = [s for s in report["stages"] if s["phase"] in STEADY_PHASES]
    if steady:
        errors = sum(s["errors"] for s in steady)
        requests = sum(s["requests"] for s in steady)
        found.append(
            Goal(
                "zero errors at the steady mix",
                errors == 0,
                f"{errors} errors in {requests:,} requests ({len(steady)} stages)",
            )
        )
    batch = stage(report, "batch")
    if not report["batch"]["available"] or batch is None:
        found.append(
            Goal("batch ingest >= 5x the single-create event rate", None, report["batch"]["note"])
        )
    elif create and create["event_rate"]:
        r = batch["event_rate"] / create["event_rate"]
        found.append(
            Goal(
                "batch ingest >= 5x the single-create event rate",
                r >= 5 and not batch["errors"],
                f"{fmt(batch['event_rate'])} vs {fmt(create['event_rate'])} events/s = {r:.2f}x "
                f"({report['config']['batch_size']} events a request, {batch['errors']} errors)",
            )
        )
    return found


def server_cpu(s: dict[str, Any]) -> float | None:
    """The HTTP server's CPU: the API, or the bare Flask app in its stage (none for raw pymongo)."""
    return {"bare-insert": s["cpu"].get("bare-flask"), "raw-pymongo": None}.get(
        s["name"], s["cpu"].get("api")
    )


def client_cpu(s: dict[str, Any]) -> float | None:
    """The load generator's CPU: locust, or the raw pymongo process."""
    return s["cpu"].get("raw-pymongo" if s["name"] == "raw-pymongo" else "locust")


def stage_table(report: dict[str, Any]) -> list[str]:
    bare = stage(report, "bare-insert") or {}
    raw = stage(report, "raw-pymongo") or {}
    lines = [
        "| stage | users | req/s | events/s | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| x bare Flask | x raw pymongo | server CPU % | mongod CPU % | load generator CPU % "
        "| machine CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["stages"]:
        if s["name"].startswith("peak-ramp-"):
            continue
        offered = f" ({fmt(s['offered_rate'])} offered)" if s["offered_rate"] else ""
        cpu = s["cpu"]
        lines.append(
            f"| {s['name']} | {s['users']} | {fmt(s['rate'])}{offered} | {fmt(s['event_rate'])} "
            f"| {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['p99'])} | {fmt(s['max'])} "
            f"| {s['errors']} | {ratio(s['rate'], bare.get('rate'))} "
            f"| {ratio(s['rate'], raw.get('rate'))} | {fmt(server_cpu(s), 0)} "
            f"| {fmt(cpu.get('mongod'), 0)} | {fmt(client_cpu(s), 0)} "
            f"| {fmt(cpu.get('machine'), 0)} |"
        )
    return lines


def knee_lines(report: dict[str, Any]) -> list[str]:
    steps = [s for s in report["stages"] if s["phase"] == "knee" and s["requests"]]
    if not steps:
        return []
    knee = report.get("knee")
    lines = ["", "## Knee of the latency curve (steady mix, closed loop, users doubling)", ""]
    if knee:
        lines.append(
            f"Knee at **{knee['users']} users, {fmt(knee['rate'])} req/s, "
            f"p99 {fmt(knee['p99'])} ms** "
            f"({knee['reason']}); maximum measured {fmt(knee['max_rate'])} req/s."
        )
    return lines


def contention(report: dict[str, Any]) -> str:
    """How many stages ran on a saturated machine (every core busy, by any process)."""
    cpus = report["machine"]["cpus"] or 1
    measured = [s for s in report["stages"] if "machine" in s["cpu"]]
    saturated = [s for s in measured if s["cpu"]["machine"] >= 95 * cpus]
    if not measured:
        return ""
    return (
        f"The machine was saturated (all {cpus} cores at least 95 % busy, counting every "
        f"process on it) during {len(saturated)} of {len(measured)} stages; load average "
        f"{report['machine']['load_average_at_start']} at the start, "
        f"{report['machine'].get('load_average_at_end', '?')} at the end."
    )


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"# eventsvc load test {report['run']} ({report['mode']})",
        "",
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, load average "
        f"{m['load_average_at_start']} at start and {m.get('load_average_at_end', '?')} at end; "
        f"commit {m['commit']}; {versions}.",
        f"The API: {report['config']['api_workers']} gunicorn gthread workers x "
        f"{report['config']['threads_per_worker']} threads over HTTPS, MongoDB over TLS with "
        "X.509, "
        "OpenBao for its secrets; the load generator (locust, one process) and both baselines "
        "share the machine with it. Run time "
        f"{report['seconds']:.0f} s.",
        contention(report),
        "",
        "## Goals (benchmark figures, not assertions)",
        "",
    ]
    for goal in goals(report):
        lines.append(f"- **{goal.verdict}**: {goal.text}: {goal.figures}")
    lines += [
        "",
        "## Stages",
        "",
        f"Comparisons at {report['config']['users']} concurrent users (closed loop, no think "
        "time); ratios are requests/s over the bare Flask insert's and raw pymongo's "
        "inserts/s of the same run. CPU is % of one core, averaged over the stage.",
        "",
        *stage_table(report),
        *knee_lines(report),
        "",
        f"Batch endpoint: {report['batch']['note']}.",
        "",
        "Plots: `throughput.png`, `latency.png` (over time), `latency-vs-load.png`, `cpu.png`; "
        "locust's own HTML reports: "
        + ", ".join(f"`{r['html']}`" for r in report["locust_runs"] if "html" in r)
        + ".",
    ]
    return "\n".join(lines) + "\n"
