"""``python -m devstack up|status|down`` as make runs them, and a failing start.

One background stack for the module (in a temporary run directory, on a free
port); each command is a real subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.api import pick_api_port
from support import alive


def devstack(
    run_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", "--run-dir", str(run_dir), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("devstack") / ".run"
    started = devstack(directory, "up", "--port", str(pick_api_port(0)))
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        yield directory
    finally:
        devstack(directory, "down")


def state_of(run_dir: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads((run_dir / "state.json").read_text())
    return state


def test_up_prints_a_banner_that_works(run_dir: Path) -> None:
    state = state_of(run_dir)
    assert state["status"] == "ready"
    ca_file = str(run_dir / "ca.pem")
    assert requests.get(f"{state['api_url']}/readyz", verify=ca_file, timeout=10).ok
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "eventsvc"), "list"],
        env={**os.environ, "EVENTSVC_CONFIG": str(run_dir / "cli.toml")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr


def test_the_cli_config_points_at_the_gateway_and_the_api_is_behind_it(run_dir: Path) -> None:
    state = state_of(run_dir)
    config = tomllib.loads((run_dir / "cli.toml").read_text(encoding="utf-8"))
    assert config["url"] == state["api_url"] == state["gateway_url"]
    assert state["backend_urls"] != [state["api_url"]]
    pids = state["pids"]
    assert isinstance(pids, dict)
    assert "traefik" in Path(f"/proc/{pids['gateway']}/cmdline").read_text()


def test_up_twice_says_it_is_already_up(run_dir: Path) -> None:
    again = devstack(run_dir, "up")
    assert again.returncode == 0
    assert "already up" in again.stdout
    assert state_of(run_dir)["runner_pid"] != 0


def test_status_shows_the_running_stack(run_dir: Path) -> None:
    status = devstack(run_dir, "status")
    assert status.returncode == 0
    assert str(state_of(run_dir)["api_url"]) in status.stdout


def test_down_stops_everything_and_leaves_no_process(run_dir: Path) -> None:
    """Last in the module: the fixture's own ``down`` then finds nothing to stop."""
    pids = state_of(run_dir)["pids"]
    assert isinstance(pids, dict)
    runner = int(str(state_of(run_dir)["runner_pid"]))
    stopped = devstack(run_dir, "down")
    assert stopped.returncode == 0
    assert "stack stopped" in stopped.stdout
    for pid in [runner, *pids.values()]:
        assert not alive(int(pid)), f"pid {pid} survived down"
    assert not (run_dir / "state.json").exists()
    assert devstack(run_dir, "status").returncode == 3


def test_a_failing_component_is_one_line_and_nothing_is_left(tmp_path: Path) -> None:
    broken = tmp_path / "mongod"
    broken.write_text("#!/bin/sh\necho 'mongod: cannot start' >&2\nexit 1\n")
    broken.chmod(0o755)
    env = {**os.environ, "EVENTSVC_MONGOD_BIN": str(broken)}
    run_dir = tmp_path / ".run"
    result = devstack(run_dir, "up", "--port", str(pick_api_port(0)), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("devstack: ")
    assert "mongod" in lines[0]
    assert "log: " in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (run_dir / "state.json").exists()
    openbao_pid = run_dir / "openbao.pid"
    if openbao_pid.exists():
        assert not alive(int(openbao_pid.read_text()))


def test_a_gateway_that_does_not_start_is_one_line_naming_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "traefik"
    broken.write_text("#!/bin/sh\necho 'traefik: cannot start' >&2\nexit 1\n")
    broken.chmod(0o755)
    env = {**os.environ, "EVENTSVC_TRAEFIK_BIN": str(broken)}
    run_dir = tmp_path / ".run"
    result = devstack(run_dir, "up", "--port", str(pick_api_port(0)), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("devstack: gateway (traefik) failed: exited with status 1")
    assert lines[0].endswith(f"log: {run_dir / 'gateway.log'}")
    assert "Traceback" not in result.stderr + result.stdout
    for component in ("eventsvc", "mongod", "openbao"):
        pid_file = run_dir / f"{component}.pid"
        assert not pid_file.exists() or not alive(int(pid_file.read_text()))


def test_run_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group, as a terminal sends it."""
    run_dir = tmp_path / ".run"
    argv = [sys.executable, "-m", "devstack", "--run-dir", str(run_dir), "run"]
    runner = subprocess.Popen(
        [*argv, "--port", str(pick_api_port(0))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "state.json").exists() or state_of(run_dir)["status"] != "ready":
            assert runner.poll() is None, runner.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        pids = state_of(run_dir)["pids"]
        assert isinstance(pids, dict)
        os.killpg(runner.pid, signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=90)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, stderr
    assert "try the CLI" in stdout
    assert "Traceback" not in stderr
    for pid in pids.values():
        assert not alive(int(pid)), f"pid {pid} survived Ctrl-C"
    assert not (run_dir / "state.json").exists()
