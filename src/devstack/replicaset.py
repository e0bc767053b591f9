"""A replica set of several ``mongod`` on loopback: what ``make run-ha`` and the fault tests run.

Each member has its own data directory, log, port and PKI certificate, and the
members authenticate to each other with those certificates
(``--clusterAuthMode x509``: same O and OU, the ``eventsvc-mongod-server`` role),
not with a shared keyFile. Elections are tuned for tests
(``electionTimeoutMillis`` 2000, ``heartbeatIntervalMillis`` 500): a new
primary about 2 s after the old one is killed, where production keeps
MongoDB's defaults (10 s, 2 s). ``transactionLifetimeLimitSeconds`` is 10
(default 60): see :data:`TRANSACTION_LIFETIME_LIMIT_S`.

:class:`RunningReplicaSet` is a :class:`~devstack.mongod.RunningMongod`
whose seed list names every member, so everything the single-member stack does
with it (users, migration, the API's environment) works unchanged. A member
can be killed and started again on its data (:meth:`Member.kill`,
:meth:`Member.start`): the fault tests do exactly that.
"""

from __future__ import annotations

import logging
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pymongo
from pymongo.errors import PyMongoError

from devstack.mongod import (
    LOOPBACK,
    START_TIMEOUT_S,
    X509_MEMBER_AUTH,
    MongodStartError,
    MongodTLS,
    RunningMongod,
    Secret,
    connect_mongod,
    find_mongod_binary,
    launch_on_free_port,
    mongod_args,
    prepare_dbpath,
    remove_path,
    start_error,
    terminate,
)

log = logging.getLogger(__name__)

ELECTION_TIMEOUT_MS = 2000
HEARTBEAT_INTERVAL_MS = 500
TRANSACTION_LIFETIME_LIMIT_S = 10
"""MongoDB's default is 60 s. A transaction left open by a crashed API instance keeps its
documents locked until then, and a client's retry of that very write (same
Idempotency-Key) meets a write conflict and gets 503s meanwhile. Ours last milliseconds."""
MEMBER_START_TIMEOUT_S = 20.0


@dataclass(eq=False)
class Member:
    """One mongod of the set; its argv is kept so it can start again on the same data."""

    index: int
    port: int
    dbpath: Path
    logpath: Path
    argv: list[str] = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` (default: kill -9, no shutdown at all) and wait for the exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=MEMBER_START_TIMEOUT_S)

    def start(self, timeout_s: float = MEMBER_START_TIMEOUT_S) -> None:
        """Start this member again on its data and port (after :meth:`kill` or :meth:`stop`)."""
        if self.is_running:
            return
        deadline = time.monotonic() + timeout_s
        self.process, _ = launch_on_free_port(
            lambda port: self.argv, self.logpath, self.port, deadline
        )
        log.info("replica set member %d started again on port %d", self.index, self.port)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM, then SIGKILL after a deadline). Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            terminate(process)


@dataclass(eq=False)
class RunningReplicaSet(RunningMongod):
    """The set started by :func:`start_replica_set`; ``host``/``port`` are member 0's."""

    members: list[Member] = field(default_factory=list)

    @property
    def hosts(self) -> str:
        """Every member, comma-separated: ``EVENTSVC_MONGODB_HOSTS`` for the API."""
        return ",".join(member.host for member in self.members)

    @property
    def seeds(self) -> list[str]:
        return [member.host for member in self.members]

    @property
    def is_running(self) -> bool:
        """True while a majority of the members runs (the set can elect a primary)."""
        return sum(member.is_running for member in self.members) * 2 > len(self.members)

    def primary(self, timeout_s: float = 30.0) -> Member:
        """The member that is primary now, waiting (bounded) for an election if there is none."""
        deadline = time.monotonic() + timeout_s
        while True:
            for member in self.members:
                if member.is_running and _is_primary(member, self.tls):
                    return member
            if time.monotonic() > deadline:
                raise MongodStartError(f"no primary in replica set {self.replica_set}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every member cleanly and remove their data directories. Idempotent."""
        for member in self.members:
            member.stop()
        for path in self._owned_paths:
            remove_path(path)
        log.info("replica set %s stopped", self.replica_set)


def start_replica_set(
    workdir: Path,
    member_tls: Sequence[MongodTLS],
    *,
    replica_set: str = "rs0",
    election_timeout_ms: int = ELECTION_TIMEOUT_MS,
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    timeout_s: float = START_TIMEOUT_S,
) -> RunningReplicaSet:
    """Start one member per ``member_tls`` under ``workdir/member-N``; return once there is a
    primary, the root user exists and every member is PRIMARY or SECONDARY.

    Bounded by ``timeout_s`` plus the members' start. On failure every member
    started is stopped.
    """
    for tls in member_tls:
        tls.check_private_key_files()
    binary, source = find_mongod_binary()
    workdir = workdir.absolute()
    deadline = time.monotonic() + timeout_s
    running = RunningReplicaSet(
        host=LOOPBACK,
        port=0,
        replica_set=replica_set,
        dbpath=workdir,
        binary=binary,
        binary_source=source,
        tls=member_tls[0],
        logpath=workdir / "member-0" / "mongod.log",
        _root_password=Secret(secrets.token_urlsafe(32)),
        _owned_paths=tuple(workdir / f"member-{index}" / "db" for index in range(len(member_tls))),
    )
    try:
        for index, tls in enumerate(member_tls):
            member = _start_member(binary, workdir, index, tls, replica_set, deadline)
            running.members.append(member)
        running.port = running.members[0].port
        settings = {
            "electionTimeoutMillis": election_timeout_ms,
            "heartbeatIntervalMillis": heartbeat_interval_ms,
        }
        _initiate(running, settings, deadline)
    except BaseException:
        running.stop()
        raise
    log.info(
        "replica set %s started: %s (binary %s, source %s, x509 member auth)",
        replica_set,
        running.hosts,
        binary,
        source,
    )
    return running


def _start_member(
    binary: Path, workdir: Path, index: int, tls: MongodTLS, replica_set: str, deadline: float
) -> Member:
    member_dir = workdir / f"member-{index}"
    member_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    dbpath = member_dir / "db"
    logpath = member_dir / "mongod.log"
    prepare_dbpath(dbpath)
    base = partial(mongod_args, binary, dbpath, X509_MEMBER_AUTH, logpath, tls, replica_set)

    def arguments(port: int) -> list[str]:
        limit = f"transactionLifetimeLimitSeconds={TRANSACTION_LIFETIME_LIMIT_S}"
        return [*base(port), "--setParameter", limit]

    process, port = launch_on_free_port(arguments, logpath, None, deadline)
    return Member(index, port, dbpath, logpath, arguments(port), process)


def _initiate(running: RunningReplicaSet, settings: dict[str, int], deadline: float) -> None:
    """replSetInitiate over member 0's localhost exception, then root on the elected primary."""
    members = [{"_id": member.index, "host": member.host} for member in running.members]
    config = {"_id": running.replica_set, "members": members, "settings": settings}
    try:
        with connect_mongod([running.members[0].host], running.tls) as direct:
            direct.admin.command("replSetInitiate", config)
        remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
        with connect_mongod(
            running.seeds,
            running.tls,
            replica_set=running.replica_set,
            serverSelectionTimeoutMS=remaining_ms,
        ) as client:
            # Sent to the primary: the localhost exception holds until this user exists.
            client.admin.command(
                "createUser",
                running.root_username,
                pwd=running._root_password.reveal(),
                roles=[{"role": "root", "db": "admin"}],
                mechanisms=["SCRAM-SHA-256"],
            )
        _wait_for_members(running, deadline)
    except (PyMongoError, MongodStartError) as exc:
        raise start_error(f"replica set bootstrap failed: {exc}", running.logpath) from None


def _wait_for_members(running: RunningReplicaSet, deadline: float) -> None:
    """Until every member is PRIMARY or SECONDARY: majority writes then need no catch-up."""
    with running.admin_client() as admin:
        while True:
            states = [m["stateStr"] for m in admin.admin.command("replSetGetStatus")["members"]]
            if all(state in ("PRIMARY", "SECONDARY") for state in states):
                return
            if time.monotonic() > deadline:
                raise MongodStartError(f"members not ready in time: {states}")
            time.sleep(0.1)


def _is_primary(member: Member, tls: MongodTLS | None) -> bool:
    """``hello`` on one member, directly (no credentials needed for it)."""
    client: pymongo.MongoClient[dict[str, Any]]
    try:
        with connect_mongod(
            [member.host], tls, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
        ) as client:
            return bool(client.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False
