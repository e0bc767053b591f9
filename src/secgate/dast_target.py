"""Where the DAST stage's target comes from when secgate has to start it: a command.

secgate imports nothing from the project it scans. Given
``--dast-target-command CMD`` it runs CMD (no shell), reads one JSON line from
its stdout and hands those values to the DAST stage as options::

    {"base_url": "https://127.0.0.1:PORT", "ca_file": "/path/ca.pem",
     "auth_header_file": "/path/auth-header"}

``base_url`` and ``ca_file`` are required; ``auth_header_file`` (a file holding
``Name: value``) is optional. No other key is accepted, and the stage still
checks every value (loopback HTTPS only, TLS verified). The header value is
read from the file by the stage: it is never in argv, never in this line and
never in a report.

When the scan is over secgate closes the command's stdin: that is the signal
to stop. A command still running after :data:`STOP_GRACE_S` gets SIGTERM, then
SIGKILL. The command's stderr goes to a log file the caller chooses.

This repository's command is ``python -m devstack dast-target``.
"""

from __future__ import annotations

import json
import logging
import selectors
import shlex
import subprocess  # runs the command the user configured, as an argument list
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0  # the dev stack starts in seconds; a cold machine under load needs more
STOP_GRACE_S = 90.0  # the dev stack stops its API gracefully (up to 40 s), then mongod, OpenBao
KILL_GRACE_S = 10.0
REQUIRED_KEYS = frozenset({"base_url", "ca_file"})
ALLOWED_KEYS = REQUIRED_KEYS | {"auth_header_file"}


class TargetUnavailable(RuntimeError):
    """The target command did not say where its target is (it failed, hung or said nonsense)."""


def parse_command(text: str) -> list[str]:
    """``--dast-target-command`` split like a shell would split it, but never run by one."""
    argv = shlex.split(text)
    if not argv:
        raise ValueError("the DAST target command is empty")
    return argv


@contextmanager
def started_target(
    argv: Sequence[str], log_file: Path, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[dict[str, str]]:
    """Run ``argv``; yield the DAST options from its JSON line; stop it however the block ends."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_file.open("wb") as stderr:
            process = subprocess.Popen(  # argument list, no shell
                list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
            )
    except OSError as exc:
        raise TargetUnavailable(f"cannot run {argv[0]!r}: {exc.strerror}") from None
    try:
        options = parse_target(_first_line(process, log_file, ready_timeout_s))
        logger.info("DAST target from %s: %s", argv[0], options["base_url"])
        yield options
    finally:
        stop(process)


def parse_target(line: bytes) -> dict[str, str]:
    """The DAST options in the target's JSON line; TargetUnavailable if it is not one."""
    try:
        document = json.loads(line)
    except ValueError:
        raise TargetUnavailable("the target command's first line is not JSON") from None
    if not isinstance(document, dict) or not all(
        isinstance(value, str) for value in document.values()
    ):
        raise TargetUnavailable("the target line must be a JSON object of strings")
    unknown = sorted(set(document) - ALLOWED_KEYS)
    missing = sorted(REQUIRED_KEYS - set(document))
    if unknown or missing:
        raise TargetUnavailable(f"target line: unknown keys {unknown}, missing keys {missing}")
    return dict(document)


def _first_line(process: subprocess.Popen[bytes], log_file: Path, timeout_s: float) -> bytes:
    """Wait up to ``timeout_s`` for the command's first stdout line."""
    stdout = process.stdout
    if stdout is None:  # never: Popen(stdout=PIPE) sets it; this says so to the type checker
        raise TargetUnavailable("the target command has no stdout pipe")
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise TargetUnavailable(f"no target line in {timeout_s:.0f} s; log: {log_file}")
    line = stdout.readline()
    if not line:
        status = process.wait()
        raise TargetUnavailable(f"exited {status} before its target line: {_last_line(log_file)}")
    return line


def _last_line(log_file: Path) -> str:
    """The command's last stderr line: a well-behaved target says there why it failed."""
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return f"{lines[-1].strip()} (log: {log_file})" if lines else f"no output (log: {log_file})"


def stop(process: subprocess.Popen[bytes]) -> int:
    """Close stdin (the agreed "stop now"), then SIGTERM, then SIGKILL; return the exit status."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    try:
        return process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        logger.warning("DAST target pid %d did not stop when stdin closed", process.pid)
    process.terminate()
    try:
        return process.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
