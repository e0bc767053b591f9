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

The API step is :mod:`devstack.api`; the operator's preparation of the
database (schema, the CLI's token) is :mod:`devstack.database`; running the
stack as ``make run|up|down`` does is :mod:`devstack.daemon`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from pymongo.errors import PyMongoError

from devstack.api import (
    PREFERRED_API_PORT,
    RunningApi,
    api_environment,
    api_settings,
    pick_api_port,
    start_api,
)
from devstack.database import prepare_database
from devstack.errors import StackError
from devstack.gateway import GatewayConfig, RunningGateway, gateway_vault_client, start_gateway
from devstack.mongod import MongodError, MongodTLS, RunningMongod, start_mongod
from devstack.openbao import (
    BootstrapResult,
    OpenBaoError,
    RunningOpenBao,
    bootstrap,
    issue_mongod_server_cert,
    load_definition,
    start_openbao,
)
from devstack.paths import BOOTSTRAP_FILE, StackPaths, write_pid
from eventsvc.files import write_private_file
from eventsvc.settings import VaultSettings

log = logging.getLogger(__name__)


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


def app_client_subject(definition: Path, config: VaultSettings) -> str:
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


# --- The whole stack (step 3, the API, is devstack.api) ---------------------------------


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
    gateway: RunningGateway | None = None
    """Traefik in front of the API (``make run``/``up``), or None (most tests)."""

    @property
    def url(self) -> str:
        """THE API URL for clients: the gateway's when there is one, else the API's own."""
        return self.gateway.url if self.gateway is not None else self.api.url

    def root_client(self) -> hvac.Client:
        return self.bao.root_client()

    def components(self) -> list[tuple[str, bool, Path]]:
        """(name, running, log) of each process, for the runner's watch loop."""
        gateway = self.gateway
        watched = [] if gateway is None else [("gateway", gateway.is_running, gateway.log_file)]
        return [
            *watched,
            ("eventsvc API", self.api.is_running, self.api.log_file),
            ("mongod", self.mongod.is_running, self.mongod.logpath),
            ("openbao", self.bao.process.poll() is None, self.bao.server_log),
        ]

    def stop(self) -> None:
        """Gateway, API (it revokes its token and certificates), mongod, then OpenBao."""
        if self.gateway is not None:
            self.gateway.stop()
        self.api.stop()
        self.mongod.stop()
        self.bao.stop()
        for component in ("gateway", "eventsvc", "mongod", "openbao"):
            self.paths.pid_file(component).unlink(missing_ok=True)
        log.info("stack stopped")

    def state(self) -> dict[str, Any]:
        """What ``status`` and the banner show: addresses, files, pids. No secret."""
        state: dict[str, Any] = {
            "status": "ready",
            "runner_pid": os.getpid(),
            "api_url": self.url,
            "docs_url": f"{self.url}/docs",
            "backend_urls": [self.api.url],
            "ca_file": str(self.paths.ca_file),
            "cli_config": str(self.paths.cli_config),
            "operator_config": str(self.paths.operator_config),
            "auditor_vault_token": str(self.paths.auditor_vault_token),
            "report_signer_token": str(self.paths.report_signer_token),
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
        if self.gateway is not None:
            state["gateway_url"] = self.gateway.url
            state["pids"]["gateway"] = self.gateway.process.pid
            state["logs"]["gateway"] = str(self.gateway.log_file)
            state["logs"]["gateway_access"] = str(self.gateway.access_log)
        return state


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
    gateway: GatewayConfig | None = None,
    gateway_port: int | None = None,
) -> RunningStack:
    """Start OpenBao, mongod and the API under ``paths.root``; stop what started on failure.

    With ``gateway``, Traefik is started in front of the API (on ``gateway_port``,
    default 8443 if free), the API takes any free port and trusts exactly one
    proxy, and the CLI configurations point at the gateway.

    ``paths.root`` is reset first: the OpenBao dev server keeps nothing, and a
    new mongod root password makes old data unusable anyway. The CLI token in
    ``cli.toml`` gets ``cli_token_scopes`` (DAST asks for all of them).
    """
    reset_run_dir(paths)
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
        write_pid(paths, "openbao", bao.process.pid)
        write_auditor_vault_token(paths, bao.root_client())
        write_report_signer_token(paths, bao.root_client())
        timings["openbao_and_bootstrap"] = time.monotonic() - begin

        step("starting mongod")
        mark = time.monotonic()
        port = pick_api_port(_api_port(api_port, gateway))
        root = bao.root_client()
        if gateway is not None:
            # Behind the gateway, X-Forwarded-For set by it (and only it) is the client address.
            api_env = {"EVENTSVC_TRUSTED_PROXY_COUNT": "1", **(api_env or {})}
        vault_env = api_environment(paths, bao, boot, port, extra=api_env)
        planned = api_settings(vault_env)
        subject = app_client_subject(definition, planned.vault)
        database = planned.mongodb_database
        mongod = start_database(paths, root, boot, subject, database)
        started.append(mongod.stop)
        write_pid(paths, "mongod", _pid_of(mongod))
        timings["mongod"] = time.monotonic() - mark

        step("starting the API")
        mark = time.monotonic()
        env = api_environment(paths, bao, boot, port, mongod, api_env)
        tokens = prepare_database(mongod, root, env, cli_token_scopes)
        api = start_api(paths, root, boot, env)
        started.append(api.stop)
        write_pid(paths, "eventsvc", api.process.pid)
        timings["api"] = time.monotonic() - mark

        url = api.url
        running_gateway = None
        if gateway is not None:
            step("starting the gateway")
            mark = time.monotonic()
            running_gateway = start_gateway(
                paths,
                [api.url],
                gateway_vault_client(root),
                ca_file=paths.ca_file,
                port=gateway_port,
                config=gateway,
                pki_mount=boot.pki_mount,
            )
            started.append(running_gateway.stop)
            write_pid(paths, "gateway", running_gateway.process.pid)
            url = running_gateway.url
            timings["gateway"] = time.monotonic() - mark
        write_cli_config(paths, url, tokens.cli)
        write_cli_config(paths, url, tokens.operator, paths.operator_config)
    except BaseException:
        for stop in reversed(started):
            stop()
        raise
    paths.wrapped_secret_id_file.unlink(missing_ok=True)  # spent: the API unwrapped it
    timings["total"] = time.monotonic() - begin
    stack = RunningStack(
        paths,
        bao,
        boot,
        mongod,
        api,
        subject,
        env,
        {k: round(v, 2) for k, v in timings.items()},
        running_gateway,
    )
    return stack


def _api_port(api_port: int | None, gateway: GatewayConfig | None) -> int:
    """The API's port: as asked; else 8443, or any free port when the gateway takes 8443."""
    if api_port is not None:
        return api_port
    return 0 if gateway is not None else PREFERRED_API_PORT


def write_cli_config(
    paths: StackPaths, api_url: str, token: str, target: Path | None = None
) -> Path:
    """A 0600 config file for the ``eventsvc`` CLI: URL, CA file and an API token.

    ``target`` defaults to ``paths.cli_config`` (``.run/cli.toml``).
    """
    target = paths.cli_config if target is None else target
    lines = [
        f"url = {json.dumps(api_url)}",
        f"ca_file = {json.dumps(str(paths.ca_file))}",
        f"token = {json.dumps(token)}",
    ]
    write_private_file(target, "\n".join(lines) + "\n")
    return target


AUDITOR_POLICY = "eventsvc-auditor"
AUDITOR_TOKEN_TTL = "24h"  # a lifetime, not a secret


def write_auditor_vault_token(paths: StackPaths, root: hvac.Client) -> Path:
    """An auditor's OpenBao token (policy eventsvc-auditor, 24 h, no children), 0600.

    The local developer plays the auditor: ``eventsvc audit verify`` reads the
    audit key with it, exactly as a real auditor's own token would. It is not
    the root token (which never leaves this process) and dies with the
    OpenBao dev server at ``make down``.
    """
    created = root.auth.token.create(
        policies=[AUDITOR_POLICY],
        ttl=AUDITOR_TOKEN_TTL,
        renewable=False,
        no_parent=False,
        meta={"purpose": "devstack-auditor"},
        display_name="devstack-auditor",
    )
    write_private_file(paths.auditor_vault_token, str(created["auth"]["client_token"]) + "\n")
    return paths.auditor_vault_token


REPORT_SIGNER_POLICY = "eventsvc-report-signer"


def write_report_signer_token(paths: StackPaths, root: hvac.Client) -> Path:
    """A token that may only sign report bundles with transit/secgate-report (24 h), 0600.

    ``make sign-report`` uses it: the local stack is the developer's signing
    identity, as CI's keyless identity is the workflow's.
    """
    created = root.auth.token.create(
        policies=[REPORT_SIGNER_POLICY],
        ttl=AUDITOR_TOKEN_TTL,
        renewable=False,
        meta={"purpose": "devstack-report-signer"},
        display_name="devstack-report-signer",
    )
    write_private_file(paths.report_signer_token, str(created["auth"]["client_token"]) + "\n")
    return paths.report_signer_token


_COMPONENT_DIRS = ("openbao", "mongod", "bootstrap", "eventsvc", "gateway")
_COMPONENT_FILES = (
    "auth-header",  # devstack.dast_target's token file, if a killed target left it
    "ca.pem",
    "cli.toml",
    "operator.toml",
    "auditor-vault-token",
    "report-signer-vault-token",
    "dev-token.toml",
    "secret-id.wrapped",
    "eventsvc.log",
    "eventsvc.pid",
    "gateway.log",
    "gateway-access.log",
    "gateway.pid",
    "mongod.pid",
    "openbao.pid",
)


def reset_run_dir(paths: StackPaths) -> None:
    """Remove what a previous stack left; keep the runner's own pid, state and log."""
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    for name in _COMPONENT_DIRS:
        shutil.rmtree(paths.root / name, ignore_errors=True)
    for name in _COMPONENT_FILES:
        (paths.root / name).unlink(missing_ok=True)
