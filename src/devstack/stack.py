"""The whole local stack: OpenBao, then mongod, then the API, stopped in reverse order.

Reading order, top to bottom::

    stack = start_stack(StackPaths(repo / ".run"))
    ...                       # https://127.0.0.1:8443, verified with stack.paths.ca_file
    stack.stop()

Each step is a plain function (:func:`start_vault`, :func:`start_database`,
:func:`start_api`) so tests can compose them differently. A step that fails
raises :class:`StackError`: one line naming the component and its log; the
steps already started are stopped by :func:`start_stack`.

Who holds what secret: the OpenBao root token and mongod's root password live
in this process's memory only (never on disk, never in a child's environment
or argv). The API receives a role_id and a response-wrapped secret_id in a
0600 file, logs in to OpenBao itself, and gets everything else from there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess  # nosec B404 - starts our own server module, fixed argv
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import hvac
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from pymongo.errors import PyMongoError

from devstack.mongod import MongodError, MongodTLS, RunningMongod, start_mongod
from devstack.openbao import (
    BootstrapResult,
    OpenBaoError,
    RunningOpenBao,
    bootstrap,
    deliver_wrapped_secret_id,
    issue_mongod_server_cert,
    load_definition,
    start_openbao,
)
from eventsvc.audit import AuditLog
from eventsvc.domain import SYSTEM_CONTEXT
from eventsvc.settings import Settings
from eventsvc.store import EventStore, StoreUnavailable
from eventsvc.tokens import TokenStore
from eventsvc.vault import VaultConfig, write_private_file

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_FILE = REPO_ROOT / "vault" / "bootstrap.yaml"
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


class StackError(RuntimeError):
    """A component did not start. The message is one line: what failed, why, which log."""

    def __init__(self, component: str, reason: str, log_file: Path | None) -> None:
        self.component = component
        self.log_file = log_file
        where = f"; log: {log_file}" if log_file is not None else ""
        super().__init__(f"{component} failed: {_first_line(reason)}{where}")


class RunnerFailed(RuntimeError):
    """The background runner (``up``) stopped before the API was ready; its own one-line reason."""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"


@dataclass(frozen=True)
class StackPaths:
    """Where everything of one stack lives (``.run/`` at the repo root for make)."""

    root: Path

    @property
    def openbao_dir(self) -> Path:
        return self.root / "openbao"

    @property
    def mongod_dir(self) -> Path:
        return self.root / "mongod"

    @property
    def bootstrap_dir(self) -> Path:
        return self.root / "bootstrap"

    @property
    def api_runtime_dir(self) -> Path:
        return self.root / "eventsvc"

    @property
    def api_log(self) -> Path:
        return self.root / "eventsvc.log"

    @property
    def stack_log(self) -> Path:
        return self.root / "stack.log"

    @property
    def ca_file(self) -> Path:
        """The PKI chain that issued the API's and mongod's certificates: what clients trust."""
        return self.root / "ca.pem"

    @property
    def cli_config(self) -> Path:
        return self.root / "cli.toml"

    @property
    def wrapped_secret_id_file(self) -> Path:
        return self.root / "secret-id.wrapped"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def pid_file(self, component: str) -> Path:
        return self.root / f"{component}.pid"


# --- Step 1: OpenBao -------------------------------------------------------------


def start_vault(
    paths: StackPaths, definition: Path = BOOTSTRAP_FILE
) -> tuple[RunningOpenBao, BootstrapResult]:
    """Start the OpenBao dev server (TLS) and apply ``vault/bootstrap.yaml`` to it."""
    try:
        bao = start_openbao(paths.openbao_dir)
    except OpenBaoError as exc:
        raise StackError("openbao", str(exc), paths.openbao_dir / "openbao.log") from None
    try:
        boot = bootstrap(bao.root_client(), definition, paths.bootstrap_dir)
    except (OpenBaoError, hvac.exceptions.VaultError, requests.RequestException) as exc:
        bao.stop()
        raise StackError("openbao bootstrap", str(exc), bao.server_log) from None
    shutil.copyfile(boot.ca_chain_file, paths.ca_file)
    return bao, boot


# --- Step 2: mongod ----------------------------------------------------------------


def app_client_subject(definition: Path, config: VaultConfig) -> str:
    """The subject of the client certificates the API will request, as MongoDB names it.

    Built from the PKI role in ``bootstrap.yaml`` and the common name
    :mod:`eventsvc.vault` asks for, in the order Vault writes the attributes
    (O, OU, then CN), rendered RFC 4514 like ``VaultSession`` does.
    """
    role = load_definition(definition)["pki"]["roles"][config.pki_client_role]
    attributes = [
        *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, value) for value in role["organization"]),
        *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, value) for value in role["ou"]),
        x509.NameAttribute(NameOID.COMMON_NAME, config.mongo_client_common_name),
    ]
    return x509.Name(attributes).rfc4514_string()


def _mongod_log(paths: StackPaths) -> Path:
    """mongod's log, or its console output when it died before logging anything."""
    log_file = paths.mongod_dir / "mongod.log"
    console = paths.mongod_dir / "mongod.log.console"
    has_log = log_file.exists() and log_file.stat().st_size > 0
    return console if not has_log and console.exists() else log_file


def start_database(
    paths: StackPaths,
    root: hvac.Client,
    boot: BootstrapResult,
    app_subject: str,
    database: str = "eventsvc",
) -> RunningMongod:
    """Start mongod with a PKI server certificate and the CRL; create the X.509 app user."""
    tls_dir = paths.mongod_dir / "tls"
    try:
        cert = issue_mongod_server_cert(root, tls_dir, pki_mount=boot.pki_mount)
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise StackError("mongod certificate", str(exc), paths.openbao_dir / "audit.log") from None
    tls = MongodTLS(server_pem_file=cert.pem_file, ca_file=cert.ca_file, crl_file=cert.crl_file)
    try:
        mongod = start_mongod(paths.mongod_dir, tls=tls)
    except MongodError as exc:
        raise StackError("mongod", str(exc), _mongod_log(paths)) from None
    try:
        mongod.create_app_user_x509(app_subject, database)
    except (PyMongoError, MongodError) as exc:
        mongod.stop()
        raise StackError("mongod app user", str(exc), mongod.logpath) from None
    return mongod


# --- Step 3: the API -----------------------------------------------------------------


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


def vault_config_for(env: Mapping[str, str]) -> VaultConfig:
    """The VaultConfig the API will build from ``env``."""
    return VaultConfig.from_settings(api_settings(env))


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
        _wait_until_ready(api, paths.ca_file, timeout_s)
    except BaseException:
        api.stop()
        raise
    return api


def _wait_until_ready(api: RunningApi, ca_file: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if not api.is_running:
            raise StackError(
                "eventsvc API",
                f"exited with status {api.process.returncode}: {_last_line(api.log_file)}",
                api.log_file,
            )
        try:
            if requests.get(f"{api.url}/readyz", verify=str(ca_file), timeout=2).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise StackError("eventsvc API", f"not ready in {timeout_s:.0f} s", api.log_file)
        time.sleep(0.1)


def _last_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in deque(handle, maxlen=20) if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


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


# --- The whole stack -------------------------------------------------------------------


@dataclass
class RunningStack:
    """Everything :func:`start_stack` started. :meth:`stop` stops it in reverse order."""

    paths: StackPaths
    bao: RunningOpenBao
    boot: BootstrapResult
    mongod: RunningMongod
    api: RunningApi
    app_subject: str
    api_env: dict[str, str]
    """The API's environment (no secret in it), for tests that start another API."""
    timings_s: dict[str, float]

    def root_client(self) -> hvac.Client:
        return self.bao.root_client()

    def stop(self) -> None:
        """API first (it revokes its token and certificates), then mongod, then OpenBao."""
        self.api.stop()
        self.mongod.stop()
        self.bao.stop()
        for component in ("eventsvc", "mongod", "openbao"):
            self.paths.pid_file(component).unlink(missing_ok=True)
        log.info("stack stopped")

    def state(self) -> dict[str, Any]:
        """What ``status`` and the banner show: addresses, files, pids. No secret."""
        return {
            "status": "ready",
            "runner_pid": os.getpid(),
            "api_url": self.api.url,
            "docs_url": f"{self.api.url}/docs",
            "ca_file": str(self.paths.ca_file),
            "cli_config": str(self.paths.cli_config),
            "vault_addr": self.bao.addr,
            "vault_ca_file": str(self.bao.ca_file),
            "mongodb_hosts": self.mongod.hosts,
            "mongodb_app_user": self.app_subject,
            "pids": {
                "eventsvc": self.api.process.pid,
                "mongod": _pid_of(self.mongod),
                "openbao": self.bao.process.pid,
            },
            "logs": {
                "eventsvc": str(self.api.log_file),
                "mongod": str(self.mongod.logpath),
                "openbao": str(self.bao.server_log),
                "openbao_audit": str(self.bao.audit_log),
                "stack": str(self.paths.stack_log),
            },
            "timings_s": self.timings_s,
        }


def _pid_of(mongod: RunningMongod) -> int | None:
    process = mongod._process  # mongod.py exposes no pid (see the report)
    return process.pid if process is not None else None


def start_stack(
    paths: StackPaths,
    *,
    api_port: int | None = None,
    api_env: Mapping[str, str] | None = None,
    definition: Path = BOOTSTRAP_FILE,
    on_step: Callable[[str], None] | None = None,
    cli_token_scopes: Sequence[str] = ("events:read", "events:write"),
) -> RunningStack:
    """Start OpenBao, mongod and the API under ``paths.root``; stop what started on failure.

    ``paths.root`` is reset first: the OpenBao dev server keeps nothing, and a
    new mongod root password makes old data unusable anyway. The CLI token in
    ``cli.toml`` gets ``cli_token_scopes`` (DAST asks for all of them).
    """
    _reset_run_dir(paths)
    timings: dict[str, float] = {}
    started: list[Callable[[], object]] = []
    begin = time.monotonic()

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)
        log.info("stack: %s", name)

    try:
        step("starting openbao")
        bao, boot = start_vault(paths, definition)
        started.append(bao.stop)
        _write_pid(paths, "openbao", bao.process.pid)
        timings["openbao_and_bootstrap"] = time.monotonic() - begin

        step("starting mongod")
        mark = time.monotonic()
        port = pick_api_port(PREFERRED_API_PORT if api_port is None else api_port)
        root = bao.root_client()
        vault_env = api_environment(paths, bao, boot, port, extra=api_env)
        subject = app_client_subject(definition, vault_config_for(vault_env))
        database = api_settings(vault_env).mongodb_database
        mongod = start_database(paths, root, boot, subject, database)
        started.append(mongod.stop)
        _write_pid(paths, "mongod", _pid_of(mongod))
        timings["mongod"] = time.monotonic() - mark

        step("starting the API")
        mark = time.monotonic()
        env = api_environment(paths, bao, boot, port, mongod, api_env)
        cli_token = prepare_database(mongod, root, env, cli_token_scopes)
        api = start_api(paths, root, boot, env)
        started.append(api.stop)
        write_cli_config(paths, api.url, cli_token)
        _write_pid(paths, "eventsvc", api.process.pid)
        timings["api"] = time.monotonic() - mark
    except BaseException:
        for stop in reversed(started):
            stop()
        raise
    paths.wrapped_secret_id_file.unlink(missing_ok=True)  # spent: the API unwrapped it
    timings["total"] = time.monotonic() - begin
    stack = RunningStack(
        paths, bao, boot, mongod, api, subject, env, {k: round(v, 2) for k, v in timings.items()}
    )
    return stack


CLI_TOKEN_LIFETIME = timedelta(days=1)


def prepare_database(
    mongod: RunningMongod,
    root: hvac.Client,
    env: Mapping[str, str],
    token_scopes: Sequence[str] = ("events:read", "events:write"),
) -> str:
    """As the operator: create the app's schema, mint the CLI's API token; return the token.

    Creating the schema before the API starts is a migration step: the API's
    workers then find every collection in place instead of racing to create
    them. The token's digest goes to MongoDB (keyed with the pepper from
    OpenBao KV); its plaintext is returned, never logged.
    """
    settings = api_settings(env)
    config = VaultConfig.from_settings(settings)
    try:
        secret = root.read(f"{config.kv_mount}/data/{config.kv_path}/app")
        pepper = str(secret["data"]["data"]["token_pepper"]).encode()
        audit_key = str(secret["data"]["data"]["audit_hmac_key"]).encode()
        with mongod.admin_client() as admin:
            audit = AuditLog(admin[settings.mongodb_database], audit_key)
            EventStore(admin, settings.mongodb_database, audit).ensure_schema()
            tokens = TokenStore(admin[settings.mongodb_database], pepper, audit)
            tokens.ensure_schema()
            minted = tokens.create("devstack-cli", token_scopes, CLI_TOKEN_LIFETIME, SYSTEM_CONTEXT)
    except (PyMongoError, StoreUnavailable, hvac.exceptions.VaultError) as exc:
        raise StackError("database preparation", str(exc), mongod.logpath) from None
    return minted.token


def write_cli_config(paths: StackPaths, api_url: str, token: str) -> Path:
    """A 0600 config file for the ``eventsvc`` CLI: URL, CA file and its API token."""
    lines = [
        f"url = {json.dumps(api_url)}",
        f"ca_file = {json.dumps(str(paths.ca_file))}",
        f"token = {json.dumps(token)}",
    ]
    write_private_file(paths.cli_config, "\n".join(lines) + "\n")
    return paths.cli_config


_COMPONENT_DIRS = ("openbao", "mongod", "bootstrap", "eventsvc")
_COMPONENT_FILES = (
    "ca.pem",
    "cli.toml",
    "secret-id.wrapped",
    "eventsvc.log",
    "eventsvc.pid",
    "mongod.pid",
    "openbao.pid",
)


def _reset_run_dir(paths: StackPaths) -> None:
    """Remove what a previous stack left; keep the runner's own pid, state and log."""
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    for name in _COMPONENT_DIRS:
        shutil.rmtree(paths.root / name, ignore_errors=True)
    for name in _COMPONENT_FILES:
        (paths.root / name).unlink(missing_ok=True)


def _write_pid(paths: StackPaths, component: str, pid: int | None) -> None:
    if pid is not None:
        paths.pid_file(component).write_text(f"{pid}\n", encoding="ascii")


# --- run / up / down / status ----------------------------------------------------------

STOP_TIMEOUT_S = 90.0
UP_TIMEOUT_S = 120.0
# What each pid file's process must be running, so a recycled pid is never signalled.
_EXPECTED_COMMAND = {
    "stack": "devstack",
    "eventsvc": "eventsvc",
    "mongod": "mongod",
    "openbao": "bao",
}


class AlreadyUp(RuntimeError):
    """A stack already runs from this directory."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        super().__init__(
            f"the stack is already up (runner pid {state.get('runner_pid')}): "
            f"{state.get('api_url', 'still starting')}"
        )


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


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(
    paths: StackPaths,
    *,
    api_port: int | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Foreground: start everything, call ``on_ready``, wait for a signal, stop everything.

    SIGINT (Ctrl-C), SIGTERM (``down``) and SIGHUP stop the stack cleanly.
    Returns 0 after a requested stop, 1 if a component died on its own.
    Raises :class:`AlreadyUp` or :class:`StackError` (nothing left running).
    """
    existing = live_state(paths)
    if existing is not None:
        raise AlreadyUp(existing)
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_keyboard_interrupt)
    _write_pid(paths, "stack", os.getpid())
    _write_state(paths, {"status": "starting", "runner_pid": os.getpid()})
    try:
        stack = start_stack(paths, api_port=api_port)
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
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # stopping must not be interrupted
        stack.stop()
        _clear_state(paths)


def _wait_for_stop_or_death(stack: RunningStack) -> int:
    """Sleep until interrupted (KeyboardInterrupt) or a component dies (return 1)."""
    while True:
        for component, alive, log_file in (
            ("eventsvc API", stack.api.is_running, stack.api.log_file),
            ("mongod", stack.mongod.is_running, stack.mongod.logpath),
            ("openbao", stack.bao.process.poll() is None, stack.bao.server_log),
        ):
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
        runner = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
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
            raise RunnerFailed(_last_line(output).removeprefix("devstack: "))
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
    for component in ("eventsvc", "mongod", "openbao"):
        pid = _read_pid(paths.pid_file(component))
        was_up = _stop_process(pid, component, API_STOP_TIMEOUT_S) or was_up
        paths.pid_file(component).unlink(missing_ok=True)
    _clear_state(paths)
    return was_up


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


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
