"""docs/sizing.md, generated from one run's report.json (``--sizing``; ``--render`` redoes it).

Every number in it comes from the run; the text around them is fixed here.
"""

from __future__ import annotations

import math
from typing import Any

from perf.loadtest.report import (
    P99_OBJECTIVE_MS,
    contention,
    fmt,
    goals,
    max_sustained,
    rate_at_objective,
    stage,
)

DAILY_VOLUMES = (1_000_000, 10_000_000, 50_000_000, 100_000_000)
PEAK_FACTORS = (5, 10)
RETENTION_DAYS = (30, 365)
MIB = 1024 * 1024
PER_EVENT_COLLECTIONS = ("events", "audit", "audit_checkpoints", "idempotency_keys")


def per_million(report: dict[str, Any]) -> dict[str, Any]:
    """Bytes on disk (storage + indexes) per million events, each created and stopped once."""
    colls = report["storage"]["collections"]
    events = colls.get("events", {}).get("count", 0)
    if not events:
        return {}
    rows = {}
    for name in PER_EVENT_COLLECTIONS:
        c = colls.get(name)
        if c is None:
            continue
        rows[name] = {
            **c,
            "per_event": (c["storage_size"] + c["index_size"]) / events,
        }
    audit = colls.get("audit", {})
    per_audit = (
        (audit["storage_size"] + audit["index_size"]) / audit["count"] if audit.get("count") else 0
    )
    event_doc = rows.get("events", {}).get("per_event", 0.0)
    checkpoints = rows.get("audit_checkpoints", {}).get("per_event", 0.0)
    # created and stopped once: one event document (with its stop) and two audit records
    per_event = event_doc + 2 * per_audit + checkpoints
    return {
        "events": events,
        "audit_records": audit.get("count", 0),
        "rows": rows,
        "per_audit_record": per_audit,
        "per_event_created_and_stopped": per_event,
        "mib_per_million": per_event * 1_000_000 / MIB,
    }


def machine_lines(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return [
        f"- **Machine**: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Linux "
        f"{m['kernel']}; load average {m['load_average_at_start']} at the start and "
        f"{m.get('load_average_at_end', '?')} at the end of the run.",
        f"- **Versions**: {versions}; commit {m['commit']}.",
        f"- **Run**: `{report['run']}` ({report['mode']} mode, {report['seconds']:.0f} s), "
        f"started {report['started']}.",
        "- **Shared machine**: the 2 cores were shared with other developers' builds and tests "
        "during the run, and the load generator (locust) and both baselines ran on the same "
        "cores as the API, mongod and OpenBao. Absolute rates are therefore low and noisy; "
        "the ratios to the baselines of the same run are more telling, though a CPU-starved run "
        "also hurts the API (more CPU per request) more than the bare baselines. "
        + contention(report),
    ]


def instance_lines(
    report: dict[str, Any],
) -> tuple[list[str], tuple[float, bool] | None]:
    """The text, and the events/s one instance carries (True: at the objective)."""
    best = rate_at_objective(report)
    top = max_sustained(report)
    lines = ["## What one instance sustains", ""]
    event_rate = None
    if best is not None:
        event_rate = best["event_rate"]
        lines += [
            f"At the objective (**p99 < {P99_OBJECTIVE_MS:g} ms**, no error) one instance "
            f"sustained **{fmt(best['rate'])} requests/s** of the steady mix (create 60 %, "
            f"stop 25 %, list 15 %), that is **{fmt(event_rate)} new events/s = "
            f"{event_rate * 60:,.0f} events per minute = {event_rate * 86400:,.0f} events per "
            f"day** (stage `{best['name']}`: p50 {fmt(best['p50'])} ms, "
            f"p99 {fmt(best['p99'])} ms).",
        ]
    else:
        steady = [s for s in report["stages"] if s["phase"] in ("knee", "ladder") and s["requests"]]
        lowest = min(steady, key=lambda s: s["p99"] or math.inf) if steady else None
        lines.append(
            f"The objective (p99 < {P99_OBJECTIVE_MS:g} ms) was **not met at any measured rate**"
            + (
                f": the lowest p99 was {fmt(lowest['p99'])} ms at {fmt(lowest['rate'])} "
                f"requests/s, {lowest['event_rate'] * 60:,.0f} new events per minute "
                f"(`{lowest['name']}`)."
                if lowest
                else "."
            )
        )
    if top is not None:
        lines += [
            "",
            f"The highest steady-mix throughput without errors was {fmt(top['rate'])} requests/s "
            f"({fmt(top['event_rate'])} new events/s = {top['event_rate'] * 60:,.0f} events per "
            f"minute = {top['event_rate'] * 86400:,.0f} events per day; p99 {fmt(top['p99'])} "
            f"ms, `{top['name']}`).",
        ]
    knee = report.get("knee")
    if knee:
        lines.append(
            f"The knee of the latency curve: {knee['users']} concurrent user(s), "
            f"{fmt(knee['rate'])} requests/s, p99 {fmt(knee['p99'])} ms ({knee['reason']})."
        )
    peak = stage(report, "peak-5x")
    if peak:
        lines.append(
            f"A 5x peak for one minute (from `peak-base` to {fmt(peak['offered_rate'])} requests/s "
            f"offered): {fmt(peak['rate'])} achieved, p99 {fmt(peak['p99'])} ms, max "
            f"{fmt(peak['max'])} ms, {peak['errors']} errors."
        )
    lines += ["", "Goals of the same run:", ""]
    lines += [f"- **{g.verdict}**: {g.text}: {g.figures}" for g in goals(report)]
    create, bare, raw = (
        stage(report, "create"),
        stage(report, "bare-insert"),
        stage(report, "raw-pymongo"),
    )
    if create and bare and raw:
        lines += [
            "",
            f"Cost of security per create at {report['config']['users']} concurrent users: the API "
            f"did {fmt(create['rate'])} creates/s, the bare Flask insert {fmt(bare['rate'])}/s "
            f"({create['rate'] / bare['rate']:.2f}x), raw pymongo {fmt(raw['rate'])}/s "
            f"({create['rate'] / raw['rate']:.2f}x).",
        ]
    cpu_lines = cpu_per_event(best or top)
    if event_rate is None and top is not None and top["event_rate"]:
        return lines + cpu_lines, (top["event_rate"], False)
    return lines + cpu_lines, (event_rate, True) if event_rate else None


def cpu_per_event(s: dict[str, Any] | None) -> list[str]:
    if not s or not s["event_rate"]:
        return []
    api, mongod = s["cpu"].get("api"), s["cpu"].get("mongod")
    if api is None or mongod is None:
        return []
    per100 = 100 / s["event_rate"]
    return [
        "",
        f"CPU at `{s['name']}`: the API {fmt(api, 0)} % and mongod {fmt(mongod, 0)} % of one core, "
        f"so about **{api * per100 / 100:.2f} API cores and {mongod * per100 / 100:.2f} mongod "
        "cores per 100 new events/s** of the steady mix (each event also stopped 25/60 of the "
        "time and listed). Use these to size a larger machine: they include TLS, auth, rate "
        "limiting, the transaction and the audit record.",
    ]


def volume_lines(basis: tuple[float, bool] | None, disk: dict[str, Any]) -> list[str]:
    event_rate = basis[0] if basis else None
    if basis is None:
        per_instance = "no steady-mix rate was measured, so no instance count is given"
    elif basis[1]:
        per_instance = f"{basis[0]:,.1f} new events/s per instance, at the p99 objective"
    else:
        per_instance = (
            f"{basis[0]:,.1f} new events/s per instance: the highest error-free rate measured, "
            "because the p99 objective was met at no rate on this machine (so these counts keep "
            "the service up, not within the objective)"
        )
    lines = [
        "## What a daily volume needs",
        "",
        "Peak rate = daily events / 86 400 s x peak factor. API instances = ceil(peak rate / "
        "the rate one instance carries) + 1 (one spare, so a deploy or a lost instance changes "
        f"nothing), with {per_instance}. Disk = daily events x bytes per event x retention.",
        "",
    ]
    header = "| events/day | peak factor | peak events/s | API instances (N+1) |"
    sep = "|---:|---:|---:|---:|"
    for days in RETENTION_DAYS:
        header += f" disk for {days} days |"
        sep += "---:|"
    lines += [header, sep]
    per_event = disk.get("per_event_created_and_stopped")
    for volume in DAILY_VOLUMES:
        for factor in PEAK_FACTORS:
            peak = volume / 86400 * factor
            instances = f"{math.ceil(peak / event_rate) + 1:,}" if event_rate else "-"
            row = f"| {volume:,} | {factor}x | {peak:,.0f} | {instances} |"
            for days in RETENTION_DAYS:
                row += f" {volume * days * per_event / 1024**3:,.1f} GiB |" if per_event else " - |"
            lines.append(row)
    lines += [
        "",
        "**MongoDB topology**: a three-member replica set (primary and two secondaries in "
        "separate failure domains; the API writes with majority write concern inside "
        "transactions, so a majority must be up to accept writes). Every API instance writes "
        "to the one primary: when the table's peak asks for more than one instance, watch the "
        "primary's CPU (the mongod cores per 100 events/s above) and disk latency; beyond one "
        "primary's capacity, shard `events` and `audit` (by a hashed key) rather than add API "
        "instances. Replication adds a network round trip to every majority write that this "
        "single-member test set does not pay.",
    ]
    return lines


def disk_lines(report: dict[str, Any], disk: dict[str, Any]) -> list[str]:
    if not disk:
        return ["## Disk", "", "No events were stored in this run."]
    lines = [
        "## Disk per million events",
        "",
        f"Measured with `collStats` on the run's mongod after a checkpoint (`fsync`): "
        f"{disk['events']:,} events and {disk['audit_records']:,} audit records "
        f"(mongod {report['storage']['mongod_version']}, WiredTiger with its default snappy "
        "block compression).",
        "",
        "| collection | documents | data (uncompressed) | on disk | indexes | bytes per event |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in disk["rows"].items():
        lines.append(
            f"| {name} | {row['count']:,} | {row['size'] / MIB:,.1f} MiB "
            f"| {row['storage_size'] / MIB:,.1f} MiB | {row['index_size'] / MIB:,.1f} MiB "
            f"| {row['per_event']:,.0f} |"
        )
    lines += [
        "",
        f"An audit record takes {disk['per_audit_record']:,.0f} bytes with its index entries. "
        f"An event created and later stopped (its document, two audit records, its share of the "
        "signed checkpoints, all indexes) takes about "
        f"**{disk['per_event_created_and_stopped']:,.0f} "
        f"bytes, {disk['mib_per_million']:,.0f} MiB per million events**, on each replica set "
        "member. Not included: the oplog (a fixed-size ring, sized by configuration), the "
        "journal, the rate limiter's counters (expired by a TTL index) and free space WiredTiger "
        "keeps after deletes. A small run's files carry fixed overhead, so this errs high.",
    ]
    db = report["storage"]["db"]
    if db.get("storageSize") is not None:
        lines += [
            "",
            f"`dbStats` of the whole database after the run: {db['objects']:,} documents, "
            f"{db['dataSize'] / MIB:,.1f} MiB of data, {db['storageSize'] / MIB:,.1f} MiB on "
            f"disk and {db['indexSize'] / MIB:,.1f} MiB of indexes (including the rate "
            "limiter's counters and the tokens).",
        ]
    return lines


SPOF_LINES = [
    "## Single points of failure (in `make run`, which this run measured)",
    "",
    "- **One mongod** (a single-member replica set): its loss stops every write and read. "
    "Fix: the three-member replica set above; `make run-ha` runs one (X.509 member "
    "authentication) and docs/reliability.md measures a primary killed under load.",
    "- **One API instance** (one gunicorn master and its workers on one host): the service is "
    "stateless, so N+1 instances behind a load balancer remove it; `make run-ha` runs two "
    "behind the gateway, which health-checks them on /readyz (docs/reliability.md: an "
    "instance killed or stopped under load, nothing lost).",
    "- **One gateway** (Traefik, in front of every instance in both stacks): the next one to "
    "make redundant; in production, two or more behind a cloud load balancer or a floating "
    "address. Not measured here: the load test reaches the API directly.",
    "- **One Vault (OpenBao)**: the API logs in at start, renews its token and re-issues its "
    "certificates through it, and audit checkpoints are signed by its transit key. A running "
    "API survives a Vault outage until its certificates expire (/readyz says 200 "
    '"degraded" meanwhile, then 503), but no new instance can start. Fix: an HA Vault '
    "cluster (integrated storage, three nodes).",
]


def render(report: dict[str, Any]) -> str:
    disk = per_million(report)
    instance, basis = instance_lines(report)
    lines = [
        "# Sizing eventsvc",
        "",
        "<!-- GENERATED by `make sizing` (python -m perf.loadtest --sizing docs/sizing.md) from "
        "one load test run; re-render with `python -m perf.loadtest --render RUN_DIR --sizing "
        "docs/sizing.md`. Do not edit by hand. -->",
        "",
        "How much one instance of the API carries at the latency objective, what a daily "
        "volume needs, and where the single points of failure are. The full report of the "
        "run (all stages, plots, locust's HTML) is in `loadtest/reports/<run>/` on the machine "
        "that ran it.",
        "",
        "## How it was measured",
        "",
        *machine_lines(report),
        f"- **What**: the full stack as `make up` starts it (OpenBao, mongod with TLS and auth, "
        f"the API under gunicorn, {report['config']['api_workers']} gthread workers x "
        f"{report['config']['threads_per_worker']} threads, HTTPS, one access log line per "
        "request), rate limits lifted (still counted in MongoDB); locust "
        "(FastHttpUser, one process) on loopback; two baselines on the same mongod in the same "
        "run: a bare Flask insert endpoint under gunicorn (no TLS, no auth, no audit) and raw "
        "pymongo `insert_one` with majority write concern, both at the same concurrency.",
        "- **Caveats**: loopback network (no real network latency), a single-member replica set "
        "(no replication round trip), mongod's WiredTiger cache capped at 0.25 GB by the dev "
        "stack, a short run (minutes, not hours: no long-run effects such as index growth "
        "beyond the cache).",
        "",
        *instance,
        "",
        *volume_lines(basis, disk),
        "",
        *disk_lines(report, disk),
        "",
        *SPOF_LINES,
    ]
    return "\n".join(lines) + "\n"
