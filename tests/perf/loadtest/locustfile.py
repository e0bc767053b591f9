"""The locust side of ``make loadtest``: the scenarios, the staged load shape, raw samples.

Runs in .venv-loadtest (locust pins its own flask and gevent), started by the
harness as ``locust -f locustfile.py --headless ...``; it imports nothing from
eventsvc. Everything it needs comes from files the harness wrote:

- ``LOADTEST_PLAN``: JSON, the stages (seconds, users, scenario) and the pacing;
- ``LOADTEST_CLI_CONFIG``: the stack's 0600 cli.toml (API token; read here, never in argv);
- ``LOADTEST_CA_FILE``: the stack's CA: TLS is verified, never ``insecure``;
- ``LOADTEST_SAMPLES``: where every request's start time, latency and status go (CSV),
  with the wall-clock start of each stage in ``<samples>.stages.json``.

The harness computes every figure from those samples; locust's own CSV and HTML
reports are kept beside them for people who like its charts.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import random
import time
import tomllib
from collections import deque
from pathlib import Path
from typing import Any

import gevent.ssl
from locust import FastHttpUser, LoadTestShape, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["LOADTEST_PLAN"]).read_text(encoding="utf-8"))
SAMPLES_FILE = Path(os.environ["LOADTEST_SAMPLES"])
with Path(os.environ["LOADTEST_CLI_CONFIG"]).open("rb") as _handle:
    _TOKEN = str(tomllib.load(_handle)["token"])
AUTH = {"Authorization": f"Bearer {_TOKEN}"}
BARE_URL = os.environ.get("LOADTEST_BARE_URL", "http://127.0.0.1:1")
BATCH_SIZE = int(PLAN.get("batch_size", 50))
LIST_PATH = "/api/v1/events?limit=20"
EVENT_BODY = {"name": "loadtest", "attributes": {"site": "lab-1", "env": "perf"}}
SETUP = "setup"  # requests a user makes before it is measured; the harness drops them

# (start epoch s, name, latency ms, HTTP status or 0, ok, events written)
_samples: list[tuple[float, str, float, int, int, int]] = []
_stage_starts: list[dict[str, Any]] = []


def _verified_context() -> Any:
    return gevent.ssl.create_default_context(cafile=os.environ["LOADTEST_CA_FILE"])


@events.request.add_listener
def _record(
    name: str,
    response_time: float,
    response: Any,
    context: dict[str, Any],
    exception: BaseException | None,
    start_time: float,
    **_: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    ok = exception is None and 200 <= status < 300
    _samples.append(
        (
            start_time,
            name,
            response_time,
            status,
            int(ok),
            int(context.get("events", 0)) if ok else 0,
        )
    )


@events.test_stop.add_listener
def _write_samples(**_: Any) -> None:
    with SAMPLES_FILE.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "name", "ms", "status", "ok", "events"])
        writer.writerows(
            (f"{s:.6f}", n, f"{ms:.3f}", st, ok, ev) for s, n, ms, st, ok, ev in _samples
        )
    stages_file = SAMPLES_FILE.with_suffix(".stages.json")
    stages_file.write_text(json.dumps(_stage_starts, indent=1), encoding="utf-8")


class ScenarioUser(FastHttpUser):
    """Does what the current stage's scenario says; closed loop unless the stage is paced.

    One user class for every stage (locust only changes how many run): a stage
    switch never waits for users of one class to stop and others to spawn.
    """

    insecure = False
    ssl_context_factory = functools.partial(_verified_context)
    network_timeout = 30.0
    connection_timeout = 10.0

    def wait_time(self) -> float:
        """Paced stages: ``paced_rate_per_user`` requests/s per user; otherwise none."""
        if not STAGE["paced"]:
            return 0.0
        period = 1.0 / float(PLAN["paced_rate_per_user"])
        return max(0.0, period - (time.perf_counter() - self.task_started))

    def on_start(self) -> None:
        self.task_started = time.perf_counter()
        self.open_ids: deque[str] = deque(maxlen=1000)
        self.known_ids: deque[str] = deque(maxlen=200)
        self.random = random.Random()  # picks tasks and ids, nothing secret
        self.batch_body = {"events": [EVENT_BODY] * BATCH_SIZE}
        for _ in range(int(PLAN.get("setup_events", 0))):
            self.create(SETUP)

    @task
    def step(self) -> None:
        self.task_started = time.perf_counter()
        scenario = STAGE["scenario"]
        action = SCENARIOS[scenario]
        if isinstance(action, list):
            action = self.random.choices([a for a, _ in action], weights=[w for _, w in action])[0]
        getattr(self, action)()

    def create(self, name: str = "POST /api/v1/events") -> None:
        response = self.client.post(
            "/api/v1/events", json=EVENT_BODY, headers=AUTH, name=name, context={"events": 1}
        )
        if response.status_code == 201:
            event_id = response.json()["id"]
            self.open_ids.append(event_id)
            self.known_ids.append(event_id)

    def stop_one(self) -> None:
        if not self.open_ids:
            self.create()
            return
        event_id = self.open_ids.popleft()
        self.client.patch(
            f"/api/v1/events/{event_id}", json={}, headers=AUTH, name="PATCH /api/v1/events/{id}"
        )

    def list_page(self) -> None:
        self.client.get(LIST_PATH, headers=AUTH, name="GET /api/v1/events")

    def read_one(self) -> None:
        if not self.known_ids:
            self.list_page()
            return
        event_id = self.random.choice(self.known_ids)
        self.client.get(f"/api/v1/events/{event_id}", headers=AUTH, name="GET /api/v1/events/{id}")

    def healthz(self) -> None:
        self.client.get("/healthz", name="GET /healthz")

    def batch(self) -> None:
        self.client.post(
            "/api/v1/events:batch",
            json=self.batch_body,
            headers=AUTH,
            name="POST /api/v1/events:batch",
            context={"events": BATCH_SIZE},
        )

    def bare_insert(self) -> None:
        """The baseline: plain HTTP, no token, one insert_one w:majority behind it."""
        self.client.post(
            BARE_URL + "/insert",
            json=EVENT_BODY,
            name="POST /insert (bare Flask)",
            context={"events": 1},
        )


# scenario -> a ScenarioUser method, or weighted methods
SCENARIOS: dict[str, str | list[tuple[str, int]]] = {
    "healthz": "healthz",
    "list": "list_page",
    "create": "create",
    "bare-insert": "bare_insert",
    "batch": "batch",
    "mix": [("create", 60), ("stop_one", 25), ("list_page", 15)],
    "read-heavy": [("list_page", 50), ("read_one", 40), ("create", 10)],
}
STAGE: dict[str, Any] = {"scenario": PLAN["stages"][0]["scenario"], "paced": False}


class StagedShape(LoadTestShape):
    """The plan's stages one after the other: the user count, and what users do, each second."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        for index, stage in enumerate(PLAN["stages"]):
            if elapsed < stage["ends_at"]:
                if len(_stage_starts) <= index:
                    STAGE.update(scenario=stage["scenario"], paced=bool(stage["paced"]))
                    _stage_starts.append(
                        {"index": index, "name": stage["name"], "started": time.time()}
                    )
                return int(stage["users"]), float(PLAN.get("spawn_rate", 100))
        return None
