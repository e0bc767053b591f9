"""``make loadtest``: the real stack under locust, two baselines in the same run, a report.

One throwaway full stack (OpenBao, mongod with TLS and auth, the API under
gunicorn over HTTPS, as ``make up`` starts it, with the rate limits lifted as for
DAST) in a temporary directory; beside it on the same mongod the bare Flask
baseline (``baseline_app``) and the raw pymongo baseline (``rawmongo``). locust
runs in its own process from .venv-loadtest; the plots are drawn there too.
Nothing here asserts on time: the goals are printed as met / not met.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from eventsvc.files import write_private_file
from eventsvc.server import THREADS_PER_WORKER
from perf.loadtest import analysis, plan
from perf.loadtest.cpu import CpuSampler
from support import free_port

log = logging.getLogger("loadtest")

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
LOADTEST_VENV = REPO / ".venv-loadtest"
UNLIMITED = "1000000/minute"
API_ENV = {
    "EVENTSVC_RATE_LIMIT_PER_ADDRESS": UNLIMITED,
    "EVENTSVC_RATE_LIMIT_PER_TOKEN": UNLIMITED,
    "EVENTSVC_LOG_LEVEL": "WARNING",
}
BASELINE_DATABASE = "loadtest_baseline"
BASELINE_USER = "loadtest-baseline"
LOCUST_TIMEOUT_MARGIN_S = 120


class HarnessError(RuntimeError):
    """The harness itself failed (not the service under test)."""


@dataclass
class Run:
    """One run's places and what it collected so far."""

    mode: plan.Mode
    directory: Path
    workdir: Path
    stack: RunningStack
    cpu: CpuSampler
    baseline_url: str = ""
    baseline_config: Path = Path()
    batch: dict[str, Any] = field(default_factory=dict)
    stages: list[analysis.StageStats] = field(default_factory=list)
    timeline: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    locust_runs: list[dict[str, Any]] = field(default_factory=list)
    knee: analysis.Knee | None = None
    raw_rounds: list[tuple[list[analysis.Sample], tuple[float, float]]] = field(
        default_factory=list
    )


def workers() -> int:
    return os.cpu_count() or 1  # what the API's gunicorn uses when EVENTSVC_WORKERS is unset


def loadtest_python() -> Path:
    python = LOADTEST_VENV / "bin" / "python"
    if not (LOADTEST_VENV / ".installed").exists():
        raise HarnessError(
            f"{LOADTEST_VENV} is missing: run `make loadtest-venv` (or make loadtest)"
        )
    return python


@contextmanager
def full_stack(workdir: Path) -> Iterator[RunningStack]:
    stack = start_stack(
        StackPaths(workdir / "stack"),
        api_port=0,
        api_env=API_ENV,
        cli_token_scopes=("events:read", "events:write"),
    )
    try:
        yield stack
    finally:
        stack.stop()


def write_baseline_config(run: Run, threads: int) -> None:
    """A SCRAM user of its own database on the stack's mongod, in a 0600 file for the baselines."""
    password = secrets.token_urlsafe(24)
    mongod = run.stack.mongod
    mongod.create_app_user_scram(BASELINE_USER, password, database=BASELINE_DATABASE)
    assert mongod.tls is not None
    config = {
        "hosts": mongod.hosts,
        "replica_set": mongod.replica_set,
        "ca_file": str(mongod.tls.ca_file.absolute()),
        "username": BASELINE_USER,
        "password": password,
        "database": BASELINE_DATABASE,
        "threads": threads,
    }
    run.baseline_config = run.workdir / "baseline.json"
    write_private_file(run.baseline_config, json.dumps(config))


@contextmanager
def bare_flask(run: Run) -> Iterator[subprocess.Popen[bytes]]:
    """The bare baseline under gunicorn: gthread, the API's worker and thread counts, plain HTTP."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(run.workdir),
        "PYTHONPATH": str(REPO / "tests"),
        "LOADTEST_BASELINE_CONFIG": str(run.baseline_config),
    }
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers()),
        "--threads",
        str(THREADS_PER_WORKER),
        "--keep-alive",
        "5",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "perf.loadtest.baseline_app:app",
    ]
    log_file = run.directory / "bare-flask.log"
    with log_file.open("wb") as handle:
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
    run.baseline_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(run.baseline_url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(f"the bare Flask baseline did not start; see {log_file}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api_token(stack: RunningStack) -> str:
    import tomllib

    with stack.paths.cli_config.open("rb") as handle:
        return str(tomllib.load(handle)["token"])


def probe_batch(run: Run) -> dict[str, Any]:
    """Is ``POST /api/v1/events:batch`` there? 404/405: not merged yet, "not available"."""
    try:
        answer = requests.post(
            run.stack.api.url + "/api/v1/events:batch",
            json={"events": [{"name": "loadtest-probe", "attributes": {"site": "lab-1"}}]},
            headers={"Authorization": f"Bearer {api_token(run.stack)}"},
            verify=str(run.stack.paths.ca_file),
            timeout=10,
        )
    except requests.RequestException as exc:
        return {"available": False, "status": None, "note": f"probe failed: {type(exc).__name__}"}
    if answer.status_code in (404, 405):
        return {
            "available": False,
            "status": answer.status_code,
            "note": f"not available (the API answers {answer.status_code}: endpoint not merged)",
        }
    ok = 200 <= answer.status_code < 300
    note = "available" if ok else f"probe answered {answer.status_code}: measured anyway"
    return {"available": True, "status": answer.status_code, "note": note}


def run_locust(run: Run, label: str, stages: list[plan.Stage], rate_per_user: float) -> None:
    """One locust process for ``stages``; its samples become stage figures and a timeline."""
    python = loadtest_python()
    prefix = run.directory / f"locust-{label}"
    plan_file = run.workdir / f"plan-{label}.json"
    plan_file.write_text(json.dumps(plan.locust_plan(stages, run.mode, rate_per_user)))
    samples_file = run.directory / f"samples-{label}.csv"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(run.workdir),
        "LOADTEST_PLAN": str(plan_file),
        "LOADTEST_SAMPLES": str(samples_file),
        "LOADTEST_CLI_CONFIG": str(run.stack.paths.cli_config),
        "LOADTEST_CA_FILE": str(run.stack.paths.ca_file),
        "LOADTEST_BARE_URL": run.baseline_url,
    }
    argv = [
        str(python),
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--host",
        run.stack.api.url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--html",
        f"{prefix}.html",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        "--stop-timeout",
        "5",
    ]
    total_s = sum(stage.seconds for stage in stages)
    log_file = run.directory / f"locust-{label}.log"
    started = time.time()
    with log_file.open("wb") as handle:
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
        run.cpu.watch("locust", process.pid)
        try:
            returncode = process.wait(timeout=total_s + LOCUST_TIMEOUT_MARGIN_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise HarnessError(f"locust ({label}) did not finish; see {log_file}") from None
    if returncode != 0 or not samples_file.exists():
        raise HarnessError(f"locust ({label}) exited with {returncode}; see {log_file}")
    samples = analysis.read_samples(samples_file)
    starts = analysis.read_stage_starts(samples_file)
    run.stages += analysis.stages_of_run(stages, samples, starts, run.mode.warmup_s, run.cpu)
    run.timeline[label] = analysis.per_second(samples, started)
    run.locust_runs.append(
        {
            "label": label,
            "origin": started,
            "seconds": round(time.time() - started, 1),
            "log": log_file.name,
            "html": f"{prefix.name}.html",
            "stages": [s.name for s in stages],
        }
    )
    text = log_file.read_text(encoding="utf-8", errors="replace")
    if "Traceback" in text:
        raise HarnessError(f"locust ({label}) raised an exception; see {log_file}")


def run_raw_pymongo(run: Run, seconds: float) -> tuple[list[analysis.Sample], tuple[float, float]]:
    """One round of the raw pymongo baseline at the comparisons' concurrency, in its own process."""
    config = json.loads(run.baseline_config.read_text(encoding="utf-8"))
    samples_file = run.directory / f"samples-raw-pymongo-{len(run.raw_rounds) + 1}.csv"
    config |= {"threads": run.mode.users, "seconds": seconds, "output": str(samples_file)}
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO / "tests")}
    process = subprocess.Popen(
        [sys.executable, "-m", "perf.loadtest.rawmongo"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run.cpu.watch("raw-pymongo", process.pid)
    _, stderr = process.communicate(json.dumps(config).encode(), timeout=seconds + 60)
    if process.returncode != 0:
        raise HarnessError(f"raw pymongo baseline failed: {stderr.decode()[-500:]}")
    samples = analysis.read_samples(samples_file)
    if not samples:
        raise HarnessError("raw pymongo baseline wrote no sample")
    first = min(s.start for s in samples)
    window = (first + min(run.mode.warmup_s, seconds / 2), first + seconds)
    run.raw_rounds.append((samples, window))
    return samples, window


def raw_pymongo_stage(run: Run) -> None:
    """The raw pymongo rounds as one stage (and one timeline, from the first round)."""
    samples = [sample for round_samples, _ in run.raw_rounds for sample in round_samples]
    windows = [window for _, window in run.raw_rounds]
    stage = plan.Stage("raw-pymongo", "compare", run.mode.users, run.mode.compare_s, "raw-pymongo")
    run.stages.append(analysis.stage_stats(stage, samples, windows, run.cpu))
    origin = min(s.start for s in samples)
    run.timeline["raw-pymongo"] = analysis.per_second(run.raw_rounds[0][0], origin)
    run.locust_runs.append(
        {
            "label": "raw-pymongo",
            "origin": origin,
            "seconds": round(sum(b - a for a, b in windows), 1),
            "stages": ["raw-pymongo"],
        }
    )


def storage(run: Run) -> dict[str, Any]:
    """collStats/dbStats of the API's database after a checkpoint (fsync): bytes per event."""
    database = run.stack.api_env.get("EVENTSVC_MONGODB_DATABASE", "eventsvc")
    with run.stack.mongod.admin_client() as client:
        client.admin.command("fsync")
        db = client[database]
        collections = {}
        for name in sorted(db.list_collection_names()):
            stats = db.command("collStats", name)
            collections[name] = {
                "count": int(stats.get("count", 0)),
                "size": int(stats.get("size", 0)),
                "storage_size": int(stats.get("storageSize", 0)),
                "index_size": int(stats.get("totalIndexSize", 0)),
                "indexes": dict(stats.get("indexSizes", {})),
            }
        db_stats = db.command("dbStats")
        version = client.server_info().get("version", "?")
    return {
        "database": database,
        "mongod_version": version,
        "collections": collections,
        "db": {k: db_stats.get(k) for k in ("objects", "dataSize", "storageSize", "indexSize")},
    }


def machine() -> dict[str, Any]:
    from importlib import metadata

    model = "?"
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    versions = {"python": sys.version.split()[0]}
    for package in ("eventsvc", "flask", "gunicorn", "pymongo"):
        versions[package] = metadata.version(package)
    locust = subprocess.run(
        [
            str(loadtest_python()),
            "-c",
            "from importlib.metadata import version as v; print(v('locust'), v('matplotlib'))",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.split()
    if len(locust) == 2:
        versions["locust"], versions["matplotlib"] = locust
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": os.uname().release,
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "versions": versions,
        "commit": commit or "?",
    }


def openbao_version(stack: RunningStack) -> str:
    try:
        health = stack.root_client().sys.read_health_status(method="GET")
        return str(health.get("version", "?"))
    except (requests.RequestException, ValueError, AttributeError):
        return "?"


def measure(mode: plan.Mode, directory: Path) -> dict[str, Any]:
    """Everything of one run, as the JSON the report, the plots and sizing.md are made from."""
    began = time.time()
    described = machine()
    with tempfile.TemporaryDirectory(prefix="eventsvc-loadtest-") as tmp:
        workdir = Path(tmp)
        log.info("starting the stack (OpenBao, mongod, API)")
        with full_stack(workdir) as stack:
            cpu = CpuSampler()
            run = Run(mode, directory, workdir, stack, cpu)
            pids = stack.state()["pids"]
            cpu.watch("api", pids["eventsvc"])
            cpu.watch("mongod", pids["mongod"])
            cpu.watch("openbao", pids["openbao"])
            write_baseline_config(run, mode.users)
            with bare_flask(run) as bare:
                cpu.watch("bare-flask", bare.pid)
                run.batch = probe_batch(run)
                cpu.start()
                try:
                    measure_phases(run)
                finally:
                    cpu.stop()
            log.info("collStats, then stopping the stack")
            stored = storage(run)
            described["versions"]["mongod"] = stored["mongod_version"]
            described["versions"]["openbao"] = openbao_version(stack)
            shutil.copyfile(stack.api.log_file, directory / "api.log")
    described["load_average_at_end"] = round(os.getloadavg()[0], 2)
    return {
        "run": directory.name,
        "mode": mode.name,
        "started": datetime.fromtimestamp(began, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - began, 1),
        "machine": described,
        "config": {
            "users": mode.users,
            "api_workers": workers(),
            "threads_per_worker": THREADS_PER_WORKER,
            "batch_size": mode.batch_size,
            "warmup_s": mode.warmup_s,
            "list": "GET /api/v1/events?limit=20",
        },
        "batch": run.batch,
        "stages": run.stages,
        "timeline": run.timeline,
        "cpu": cpu.rows,
        "locust_runs": run.locust_runs,
        "knee": run.knee,
        "storage": stored,
    }


def measure_phases(run: Run) -> None:
    mode = run.mode
    first = [
        *plan.compare_stages(mode, run.batch["available"]),
        *plan.knee_stages(mode),
        *plan.read_heavy_stages(mode),
    ]
    raw_s = mode.compare_s / mode.rounds
    log.info("raw pymongo baseline, round 1 (%.0f s)", raw_s)
    run_raw_pymongo(run, raw_s)
    log.info("locust run 1: comparisons, knee, read-heavy (%.0f s)", sum(s.seconds for s in first))
    run_locust(run, "closed-loop", first, 1.0)
    if mode.rounds > 1:
        log.info("raw pymongo baseline, round 2 (%.0f s)", raw_s)
        run_raw_pymongo(run, raw_s)
    raw_pymongo_stage(run)
    knee = run.knee = analysis.find_knee([s for s in run.stages if s.phase == "knee"])
    max_rate = knee.max_rate if knee else 1.0
    rate = plan.per_user_rate(mode, max_rate)
    paced = plan.paced_stages(mode, max_rate)
    log.info("locust run 2: rate ladder and peak (%.0f s)", sum(s.seconds for s in paced))
    run_locust(run, "paced", paced, rate)
