"""The API process of the stack: its environment, its start, its readiness, its stop.

The API is started as ``python -m eventsvc.server`` with an environment built
here from scratch: addresses, files and a role_id, never a secret. It then
logs in to OpenBao with the response-wrapped secret_id delivered to a 0600
file just before it starts, and gets everything else from there.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess  # starts our own server module, fixed argv
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import requests

from devstack.errors import StackError, last_line
from devstack.mongod import RunningMongod
from devstack.openbao import BootstrapResult, RunningOpenBao, deliver_wrapped_secret_id
from devstack.paths import StackPaths
from eventsvc.settings import Settings

log = logging.getLogger(__name__)

PREFERRED_API_PORT = 8443
API_READY_TIMEOUT_S = 60.0
API_STOP_TIMEOUT_S = 40.0  # gunicorn's graceful_timeout is 30 s
# Passed through to the API; nothing else from this process's environment is.
API_INHERITED_ENV = (
    "PATH",
    "PYTHONPATH",
    "LANG",
    "LC_ALL",
    "TZ",
    # Coverage of the API process when the test suite starts the stack.
    "COVERAGE_PROCESS_START",
    "COVERAGE_PROCESS_CONFIG",
)


@dataclass
class RunningApi:
    """``python -m eventsvc.server`` started by :func:`start_api`."""

    url: str
    port: int
    log_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = API_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (graceful: in-flight requests finish, Vault leases are revoked), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("eventsvc pid %d ignored SIGTERM; killing it", self.process.pid)
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def api_environment(
    paths: StackPaths,
    bao: RunningOpenBao,
    boot: BootstrapResult,
    port: int,
    mongod: RunningMongod | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The API's whole environment: where things are, never a secret.

    ``extra`` (tests: workers, log level...) is applied last. Without
    ``mongod`` the MongoDB part is missing: enough to compute the Vault side.
    """
    env = {name: os.environ[name] for name in API_INHERITED_ENV if name in os.environ}
    env |= {
        "HOME": str(paths.api_runtime_dir),
        "EVENTSVC_PROFILE": "dev",
        "EVENTSVC_BIND": f"127.0.0.1:{port}",
        "EVENTSVC_VAULT_ADDR": bao.addr,
        "EVENTSVC_VAULT_CA_FILE": str(bao.ca_file),
        "EVENTSVC_VAULT_ROLE_ID": boot.role_id,
        "EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE": str(paths.wrapped_secret_id_file),
        "EVENTSVC_RUNTIME_DIR": str(paths.api_runtime_dir),
    }
    if mongod is not None:
        env |= {
            "EVENTSVC_MONGODB_HOSTS": mongod.hosts,
            "EVENTSVC_MONGODB_REPLICA_SET": mongod.replica_set,
            "EVENTSVC_MONGODB_TLS_CA_FILE": str(_mongod_ca_file(mongod)),
        }
    return env | dict(extra or {})


def _mongod_ca_file(mongod: RunningMongod) -> Path:
    if mongod.tls is None:
        raise StackError("mongod", "started without TLS; the stack needs TLS", mongod.logpath)
    return mongod.tls.ca_file.absolute()


def api_settings(env: Mapping[str, str]) -> Settings:
    """The Settings the API will read from ``env``: the same code decides the same names."""
    prefix = "EVENTSVC_"
    values = {
        key[len(prefix) :].lower(): value for key, value in env.items() if key.startswith(prefix)
    }
    return Settings.model_validate(values)


def start_api(
    paths: StackPaths,
    root: hvac.Client,
    boot: BootstrapResult,
    env: Mapping[str, str],
    *,
    timeout_s: float = API_READY_TIMEOUT_S,
) -> RunningApi:
    """Deliver a wrapped secret_id, start the server and wait until /readyz says ready."""
    deliver_wrapped_secret_id(
        root,
        paths.wrapped_secret_id_file,
        approle_mount=boot.approle_mount,
        role_name=boot.role_name,
    )
    paths.api_runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = int(env["EVENTSVC_BIND"].rsplit(":", 1)[1])
    with paths.api_log.open("ab") as log_handle:
        process = subprocess.Popen(  # our own module, no shell, no secret in argv
            [sys.executable, "-m", "eventsvc.server"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the stack runner, which stops it gracefully
        )
    api = RunningApi(f"https://127.0.0.1:{port}", port, paths.api_log, process)
    try:
        wait_until_ready(
            "eventsvc API", api.url, api.process, api.log_file, paths.ca_file, timeout_s
        )
    except BaseException:
        api.stop()
        raise
    return api


def wait_until_ready(
    component: str,
    url: str,
    process: subprocess.Popen[bytes],
    log_file: Path,
    ca_file: Path,
    timeout_s: float,
) -> None:
    """Poll ``url``/readyz over verified TLS until 200; exit or deadline: StackError.

    Shared by the API and the gateway: both are ready when their /readyz answers.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise StackError(
                component,
                f"exited with status {process.returncode}: {last_line(log_file)}",
                log_file,
            )
        try:
            if requests.get(f"{url}/readyz", verify=str(ca_file), timeout=2).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise StackError(
                component, f"not ready in {timeout_s:.0f} s: {last_line(log_file)}", log_file
            )
        time.sleep(0.1)


def pick_api_port(preferred: int = PREFERRED_API_PORT) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port (0: any free port)."""
    for candidate in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise StackError("eventsvc API", "no free port on 127.0.0.1", None)
