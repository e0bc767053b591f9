"""``python -m devstack run-ha`` as ``make run-ha`` runs it, and ``down`` after its runner died.

A real subprocess: OpenBao, a 3-member replica set, 2 API instances, the gateway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from devstack.api import pick_api_port
from support import alive


def _wait_for_state(run_dir: Path, runner: subprocess.Popen[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            state: dict[str, Any] = json.loads((run_dir / "state.json").read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("status") == "ready":
            return state
        assert runner.poll() is None, runner.stdout.read() if runner.stdout else ""
        time.sleep(0.5)
    raise AssertionError("run-ha was not ready in 180 s")


def test_run_ha_serves_through_the_gateway_and_down_stops_what_a_killed_runner_left(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / ".run" / "ha"
    port = pick_api_port(0)
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack",
            "--run-dir",
            str(run_dir),
            "run-ha",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        state = _wait_for_state(run_dir, runner)
        ca_file = state["ca_file"]
        assert state["api_url"] == f"https://127.0.0.1:{port}"
        assert len(state["backend_urls"]) == 2
        assert len(state["mongodb_hosts"].split(",")) == 3
        for url in [state["api_url"], *state["backend_urls"]]:
            assert requests.get(f"{url}/readyz", verify=ca_file, timeout=10).status_code == 200
        assert {"gateway", "eventsvc-0", "eventsvc-1", "mongod-0", "mongod-2"} <= set(state["pids"])
        assert not list(run_dir.glob("secret-id*.wrapped")), "a spent secret_id was left on disk"
        os.kill(runner.pid, signal.SIGKILL)  # the runner dies; what it started does not
        runner.wait(timeout=10)
        pids = [pid for pid in state["pids"].values() if pid is not None]
        assert all(alive(pid) for pid in pids)
        down = subprocess.run(
            [sys.executable, "-m", "devstack", "--run-dir", str(run_dir), "down"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert "stack stopped" in down.stdout
        assert not any(alive(pid) for pid in pids)
        assert not list(run_dir.glob("*.pid"))
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGINT)
            runner.wait(timeout=120)


def test_run_ha_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    run_dir = tmp_path / ".run" / "ha"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack",
            "--run-dir",
            str(run_dir),
            "run-ha",
            "--members",
            "1",
            "--instances",
            "1",
            "--port",
            str(pick_api_port(0)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        state = _wait_for_state(run_dir, runner)
        pids = [pid for pid in state["pids"].values() if pid is not None]
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0
    assert "behind it" in output  # the banner names the instances behind the gateway
    assert not any(alive(pid) for pid in pids)
    assert not (run_dir / "state.json").exists()
