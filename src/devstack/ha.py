"""The highly available local stack (``make run-ha``): a replica set and several API instances.

Reading order::

    stack = start_ha_stack(StackPaths(repo / ".run" / "ha"), gateway=GatewayConfig())
    ...                       # stack.url: the gateway, in front of every API instance
    stack.stop()

The same steps as :mod:`devstack.stack`, composed differently: one OpenBao
(:func:`~devstack.stack.start_vault`), then a replica set of ``members``
mongod with X.509 member authentication, each member with its own PKI
certificate (:mod:`devstack.replicaset`), then ``instances`` API processes
(:func:`~devstack.api.start_api`), each on its own loopback port, each logging
in to OpenBao with its own single-use wrapped secret_id, with its own runtime
directory and log (:meth:`~devstack.paths.StackPaths.for_api_instance`), then
the gateway (:func:`~devstack.gateway.start_gateway`) in front of them all,
which sends requests only to instances whose ``/readyz`` answers 200.

How this maps to production is in README.md ("High availability").
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import requests
from pymongo.errors import PyMongoError

from devstack.api import RunningApi, api_environment, api_settings, pick_api_port, start_api
from devstack.database import PreparedTokens, prepare_database
from devstack.errors import StackError
from devstack.gateway import GatewayConfig, RunningGateway, gateway_vault_client, start_gateway
from devstack.mongod import MongodError, MongodTLS
from devstack.openbao import BootstrapResult, RunningOpenBao, issue_mongod_server_cert
from devstack.paths import BOOTSTRAP_FILE, StackPaths, write_pid
from devstack.replicaset import RunningReplicaSet, start_replica_set
from devstack.stack import (
    app_client_subject,
    reset_run_dir,
    start_vault,
    write_auditor_vault_token,
    write_cli_config,
)

log = logging.getLogger(__name__)

DEFAULT_MEMBERS = 3
DEFAULT_INSTANCES = 2


@dataclass
class RunningHaStack:
    """Everything :func:`start_ha_stack` started; :meth:`stop` stops it in reverse order."""

    paths: StackPaths
    bao: RunningOpenBao
    boot: BootstrapResult
    replica_set: RunningReplicaSet
    apis: list[RunningApi]
    api_envs: list[dict[str, str]] = field(repr=False)
    """Each instance's environment (no secret in it): how :meth:`restart_api` starts it again."""
    tokens: PreparedTokens = field(repr=False)
    app_subject: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
    gateway: RunningGateway | None = None

    @property
    def url(self) -> str:
        """Where clients call the API: the gateway, or the first instance without one."""
        return self.gateway.url if self.gateway is not None else self.apis[0].url

    def root_client(self) -> hvac.Client:
        return self.bao.root_client()

    def restart_api(self, instance: int) -> RunningApi:
        """Start instance ``instance`` again (after a crash or a stop), with a new secret_id."""
        self.apis[instance].stop()
        paths = self.paths.for_api_instance(instance)
        self.apis[instance] = start_api(
            paths, self.root_client(), self.boot, self.api_envs[instance]
        )
        write_pid(self.paths, f"eventsvc-{instance}", self.apis[instance].process.pid)
        paths.wrapped_secret_id_file.unlink(missing_ok=True)  # spent: the instance unwrapped it
        return self.apis[instance]

    def components(self) -> list[tuple[str, bool, Path]]:
        """(name, running, log) of each process, for the runner's watch loop.

        An API instance that stops is a death (the gateway routes around it, but
        the runner says so); the replica set only when it loses its majority.
        """
        gateway = self.gateway
        listed = [] if gateway is None else [("gateway", gateway.is_running, gateway.log_file)]
        listed += [
            (f"eventsvc API {index}", api.is_running, api.log_file)
            for index, api in enumerate(self.apis)
        ]
        listed.append(
            ("mongod replica set (majority)", self.replica_set.is_running, self.replica_set.logpath)
        )
        listed.append(("openbao", self.bao.process.poll() is None, self.bao.server_log))
        return listed

    def stop(self) -> None:
        """Gateway, API instances (each revokes its token and certificates), mongod, OpenBao."""
        if self.gateway is not None:
            self.gateway.stop()
        for api in self.apis:
            api.stop()
        self.replica_set.stop()
        self.bao.stop()
        for pid_file in self.paths.root.glob("*.pid"):
            if pid_file.stem != "stack":
                pid_file.unlink(missing_ok=True)
        log.info("ha stack stopped")

    def state(self) -> dict[str, Any]:
        """What the banner shows: addresses, files, pids. No secret."""
        state: dict[str, Any] = {
            "status": "ready",
            "runner_pid": os.getpid(),
            "api_url": self.url,
            "docs_url": f"{self.url}/docs",
            "backend_urls": [api.url for api in self.apis],
            "ca_file": str(self.paths.ca_file),
            "cli_config": str(self.paths.cli_config),
            "operator_config": str(self.paths.operator_config),
            "auditor_vault_token": str(self.paths.auditor_vault_token),
            "vault_addr": self.bao.addr,
            "vault_ca_file": str(self.bao.ca_file),
            "mongodb_hosts": self.replica_set.hosts,
            "mongodb_app_user": self.app_subject,
            "pids": {
                **{f"eventsvc-{i}": api.process.pid for i, api in enumerate(self.apis)},
                **{f"mongod-{m.index}": m.pid for m in self.replica_set.members},
                "openbao": self.bao.process.pid,
            },
            "logs": {
                **{f"eventsvc-{i}": str(api.log_file) for i, api in enumerate(self.apis)},
                **{f"mongod-{m.index}": str(m.logpath) for m in self.replica_set.members},
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


def start_replica_set_database(
    paths: StackPaths,
    root: hvac.Client,
    boot: BootstrapResult,
    app_subject: str,
    database: str,
    members: int,
) -> RunningReplicaSet:
    """Issue one member certificate per mongod, start the set, create the X.509 app user."""
    member_tls = []
    try:
        for index in range(members):
            cert = issue_mongod_server_cert(
                root, paths.mongod_dir / "tls" / f"member-{index}", pki_mount=boot.pki_mount
            )
            tls = MongodTLS(cert.pem_file, ca_file=cert.ca_file, crl_file=cert.crl_file)
            member_tls.append(tls)
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise StackError("mongod certificate", str(exc), paths.openbao_dir / "audit.log") from None
    try:
        replica_set = start_replica_set(paths.mongod_dir, member_tls)
    except MongodError as exc:
        raise StackError("mongod replica set", str(exc), paths.mongod_dir) from None
    try:
        replica_set.create_app_user_x509(app_subject, database)
    except (PyMongoError, MongodError) as exc:
        replica_set.stop()
        raise StackError("mongod app user", str(exc), replica_set.logpath) from None
    return replica_set


def start_ha_stack(
    paths: StackPaths,
    *,
    members: int = DEFAULT_MEMBERS,
    instances: int = DEFAULT_INSTANCES,
    api_env: Mapping[str, str] | None = None,
    definition: Path = BOOTSTRAP_FILE,
    on_step: Callable[[str], None] | None = None,
    cli_token_scopes: Sequence[str] = ("events:read", "events:write"),
    gateway: GatewayConfig | None = None,
    gateway_port: int | None = None,
) -> RunningHaStack:
    """Start OpenBao, a ``members`` replica set and ``instances`` APIs under ``paths.root``.

    With ``gateway``, Traefik is started in front of every instance (on
    ``gateway_port``, default 8443 if free), health-checking them on
    ``/readyz``; the instances trust exactly one proxy. ``paths.root`` is reset
    first, as for :func:`devstack.stack.start_stack`. What started is stopped
    again if a later step fails.
    """
    if members < 1 or instances < 1:
        raise StackError("ha stack", "needs at least one member and one API instance", None)
    reset_run_dir(paths)
    for index in range(instances):
        _reset_instance(paths.for_api_instance(index))
    timings: dict[str, float] = {}
    started: list[Callable[[], object]] = []
    begin = time.monotonic()

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)
        log.info("ha stack: %s", name)

    try:
        step("starting openbao")
        bao, boot = start_vault(paths, definition)
        started.append(bao.stop)
        write_pid(paths, "openbao", bao.process.pid)
        write_auditor_vault_token(paths, bao.root_client())
        timings["openbao_and_bootstrap"] = time.monotonic() - begin

        step(f"starting a {members}-member replica set")
        mark = time.monotonic()
        root = bao.root_client()
        ports = [pick_api_port(0) for _ in range(instances)]
        if gateway is not None:
            # Behind the gateway, X-Forwarded-For set by it (and only it) is the client address.
            api_env = {"EVENTSVC_TRUSTED_PROXY_COUNT": "1", **(api_env or {})}
        planned = api_settings(api_environment(paths, bao, boot, ports[0], extra=api_env))
        subject = app_client_subject(definition, planned.vault)
        replica_set = start_replica_set_database(
            paths, root, boot, subject, planned.mongodb_database, members
        )
        started.append(replica_set.stop)
        for member in replica_set.members:
            write_pid(paths, f"mongod-{member.index}", member.pid)
        timings["replica_set"] = time.monotonic() - mark

        step(f"starting {instances} API instances")
        mark = time.monotonic()
        envs = [
            api_environment(paths.for_api_instance(i), bao, boot, port, replica_set, api_env)
            for i, port in enumerate(ports)
        ]
        tokens = prepare_database(replica_set, root, envs[0], cli_token_scopes)
        apis: list[RunningApi] = []
        for index, env in enumerate(envs):
            api = start_api(paths.for_api_instance(index), root, boot, env)
            started.append(api.stop)
            apis.append(api)
            write_pid(paths, f"eventsvc-{index}", api.process.pid)
            paths.for_api_instance(index).wrapped_secret_id_file.unlink(missing_ok=True)  # spent
        timings["api"] = time.monotonic() - mark

        running_gateway = None
        if gateway is not None:
            step("starting the gateway")
            mark = time.monotonic()
            running_gateway = start_gateway(
                paths,
                [api.url for api in apis],
                gateway_vault_client(root),
                ca_file=paths.ca_file,
                port=gateway_port,
                config=gateway,
                pki_mount=boot.pki_mount,
            )
            started.append(running_gateway.stop)
            write_pid(paths, "gateway", running_gateway.process.pid)
            timings["gateway"] = time.monotonic() - mark
    except BaseException:
        for stop in reversed(started):
            stop()
        raise
    timings["total"] = time.monotonic() - begin
    stack = RunningHaStack(
        paths,
        bao,
        boot,
        replica_set,
        apis,
        envs,
        tokens,
        subject,
        {key: round(value, 2) for key, value in timings.items()},
        running_gateway,
    )
    write_cli_config(paths, stack.url, tokens.cli)
    write_cli_config(paths, stack.url, tokens.operator, paths.operator_config)
    return stack


def _reset_instance(paths: StackPaths) -> None:
    """Remove what a previous run of this API instance left (its runtime dir, log, secret_id)."""
    shutil.rmtree(paths.api_runtime_dir, ignore_errors=True)
    paths.api_log.unlink(missing_ok=True)
    paths.wrapped_secret_id_file.unlink(missing_ok=True)
