"""Running the stack for ``make``: ``run`` in the foreground, ``up`` in the background, ``down``.

The runner (``python -m devstack run``) owns the stack: it starts it, writes
``state.json`` (addresses, files, pids; no secret) and stops everything on
SIGINT, SIGTERM or SIGHUP. ``up`` starts that runner detached and waits for
the state to say ready; ``down`` signals the runner, then stops from their
pid files whatever components a killed runner left behind. A pid is only ever
signalled when ``/proc`` shows it runs the expected command.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess  # starts our own runner module, fixed argv
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from devstack.api import API_STOP_TIMEOUT_S
from devstack.errors import StackError, last_line
from devstack.gateway import GATEWAY_STOP_TIMEOUT_S, gateway_config_from_env
from devstack.paths import StackPaths, read_pid, write_pid
from devstack.stack import start_stack

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


STOP_TIMEOUT_S = 90.0
UP_TIMEOUT_S = 120.0
# What each pid file's process must be running, so a recycled pid is never signalled.
_EXPECTED_COMMAND = {
    "stack": "devstack",
    "gateway": "traefik",
    "eventsvc": "eventsvc",
    "mongod": "mongod",
    "openbao": "bao",
}


class Runnable(Protocol):
    """What the runner needs of a started stack (:class:`~devstack.stack.RunningStack`,
    :class:`~devstack.ha.RunningHaStack`)."""

    def state(self) -> dict[str, Any]: ...

    def components(self) -> list[tuple[str, bool, Path]]: ...

    def stop(self) -> None: ...


class AlreadyUp(RuntimeError):
    """A stack already runs from this directory."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        super().__init__(
            f"the stack is already up (runner pid {state.get('runner_pid')}): "
            f"{state.get('api_url', 'still starting')}"
        )


class RunnerFailed(RuntimeError):
    """The background runner (``up``) stopped before the API was ready; its own one-line reason."""


def read_state(paths: StackPaths) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(paths.state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state


def live_state(paths: StackPaths) -> dict[str, Any] | None:
    """The state of a stack whose runner is alive, else None."""
    state = read_state(paths)
    if state is None or not _is_our_process(state.get("runner_pid"), "stack"):
        return None
    return state


def _write_state(paths: StackPaths, state: dict[str, Any]) -> None:
    tmp = paths.state_file.with_name(".state.json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, paths.state_file)


def _clear_state(paths: StackPaths) -> None:
    paths.state_file.unlink(missing_ok=True)
    paths.pid_file("stack").unlink(missing_ok=True)


def _is_our_process(pid: object, component: str) -> bool:
    """True if ``pid`` is alive and runs the command expected for ``component``."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return _EXPECTED_COMMAND[component].encode() in cmdline


def stop_on_signals() -> None:
    """SIGINT (Ctrl-C), SIGTERM (``down``) and SIGHUP all stop the stack the same way."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_keyboard_interrupt)


def ignore_stop_signals() -> None:
    """While the stack stops: a second Ctrl-C must not interrupt stopping."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(
    paths: StackPaths,
    *,
    api_port: int | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    start: Callable[[StackPaths], Runnable] | None = None,
) -> int:
    """Foreground: start everything, call ``on_ready``, wait for a signal, stop everything.

    The API is behind the gateway, which listens on ``api_port`` (default 8443
    if free): that is the URL clients get.

    ``start`` starts the stack (default: :func:`~devstack.stack.start_stack` on
    ``api_port``; ``make run-ha`` passes :func:`~devstack.ha.start_ha_stack`).

    SIGINT (Ctrl-C), SIGTERM (``down``) and SIGHUP stop the stack cleanly.
    Returns 0 after a requested stop, 1 if a component died on its own.
    Raises :class:`AlreadyUp` or :class:`StackError` (nothing left running).
    """
    existing = live_state(paths)
    if existing is not None:
        raise AlreadyUp(existing)
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    stop_on_signals()
    write_pid(paths, "stack", os.getpid())
    _write_state(paths, {"status": "starting", "runner_pid": os.getpid()})
    try:
        stack = (
            start(paths)
            if start is not None
            else start_stack(
                paths, gateway=gateway_config_from_env(os.environ), gateway_port=api_port
            )
        )
    except KeyboardInterrupt:
        _clear_state(paths)
        return 0
    except BaseException:
        _clear_state(paths)
        raise
    try:
        _write_state(paths, stack.state())
        if on_ready is not None:
            on_ready(stack.state())
        return _wait_for_stop_or_death(stack)
    except KeyboardInterrupt:
        return 0
    finally:
        ignore_stop_signals()
        stack.stop()
        _clear_state(paths)


def _wait_for_stop_or_death(stack: Runnable) -> int:
    """Sleep until interrupted (KeyboardInterrupt) or a component dies (return 1)."""
    while True:
        for component, alive, log_file in stack.components():
            if not alive:
                log.error("%s exited unexpectedly; log: %s", component, log_file)
                sys.stderr.write(f"devstack: {component} exited unexpectedly; log: {log_file}\n")
                return 1
        time.sleep(0.5)


def up(
    paths: StackPaths, *, api_port: int | None = None, timeout_s: float = UP_TIMEOUT_S
) -> dict[str, Any]:
    """Start ``run`` in the background and return its state once the API is ready."""
    existing = live_state(paths)
    if existing is not None:
        raise AlreadyUp(existing)
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _clear_state(paths)
    argv = [sys.executable, "-m", "devstack", "--run-dir", str(paths.root), "run"]
    if api_port is not None:
        argv += ["--port", str(api_port)]
    output = paths.root / "stack.out"
    with output.open("wb") as handle:
        runner = subprocess.Popen(  # our own module, fixed argv
            argv,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this terminal
        )
    deadline = time.monotonic() + timeout_s
    while True:
        state = read_state(paths)
        if state and state.get("status") == "ready" and state.get("runner_pid") == runner.pid:
            return state
        if runner.poll() is not None:
            raise RunnerFailed(last_line(output).removeprefix("devstack: "))
        if time.monotonic() > deadline:
            runner.terminate()
            runner.wait(STOP_TIMEOUT_S)
            raise StackError("stack", f"not ready in {timeout_s:.0f} s", output)
        time.sleep(0.2)


def down(paths: StackPaths) -> bool:
    """Stop the stack started by ``up`` (or ``run``); True if something was running.

    The runner stops its components in order. If it was killed, the
    components it left are stopped from their pid files.
    """
    state = read_state(paths) or {}
    runner_pid = state.get("runner_pid")
    was_up = _stop_process(runner_pid, "stack", STOP_TIMEOUT_S)
    for component in ("gateway", "eventsvc", "mongod", "openbao"):
        timeout_s = GATEWAY_STOP_TIMEOUT_S if component == "gateway" else API_STOP_TIMEOUT_S
        # eventsvc.pid, or eventsvc-0.pid, eventsvc-1.pid... for the HA stack's instances
        for pid_file in _pid_files(paths, component):
            was_up = _stop_process(read_pid(pid_file), component, timeout_s) or was_up
            pid_file.unlink(missing_ok=True)
    _clear_state(paths)
    return was_up


def _pid_files(paths: StackPaths, component: str) -> list[Path]:
    """``component.pid`` and ``component-N.pid`` (one per API instance or replica set member)."""
    numbered = [
        found
        for found in paths.root.glob(f"{component}-*.pid")
        if found.stem.removeprefix(f"{component}-").isdigit()
    ]
    return [paths.pid_file(component), *sorted(numbered)]


def _stop_process(pid: object, component: str, timeout_s: float) -> bool:
    """SIGTERM ``pid`` if it is ours, wait, then SIGKILL; True if it was running."""
    if not isinstance(pid, int) or not _is_our_process(pid, component):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_our_process(pid, component):
        if time.monotonic() > deadline:
            log.warning("%s (pid %d) ignored SIGTERM; killing it", component, pid)
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    return True
