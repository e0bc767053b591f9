"""Production entry point: start-up in order, then the app under gunicorn (HTTPS outside tests).

Why gunicorn's ``gthread`` workers: a request spends most of its time waiting
on MongoDB, so threads give concurrency cheaply, while one process per CPU
gives CPU parallelism despite the GIL. Each worker process builds its own
MongoClient after the fork (pymongo clients are not fork-safe) and shares its
connection pool between its threads.

Start-up runs once, in the master, in one direction: settings, then
credentials (from settings in dev/test, from Vault when
``EVENTSVC_VAULT_ADDR`` is set, see :mod:`eventsvc.credentials`), then a
read-only check of the MongoDB schema (exit 3 with one line when it differs
from what ``eventsvc migrate`` creates: the app's role cannot fix it, and
must not serve on a tampered audit collection), then gunicorn. Workers
inherit settings and credentials through the fork and build their services
with :func:`eventsvc.services.build_services`. With Vault, a child of the
master runs the lease keeper (:class:`~eventsvc.vault.keeper.LeaseKeeperProcess`).
When it re-issues a certificate to the same files, it asks the master for a
graceful reload (SIGHUP): new workers start with the new files, the old ones
finish their in-flight requests and exit. That is how rotation avoids
downtime without a lock around queries. On exit the certificates and the
token are revoked and the runtime directory removed; so they are when
gunicorn gives up before serving (say, the address is taken).

Each worker also writes the counts of aggregated denials
(:mod:`eventsvc.audit.denials`) every few seconds and when it exits.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
from contextlib import closing
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from eventsvc.api.services import denial_recorder
from eventsvc.app import create_app
from eventsvc.audit.denials import start_denial_flushes
from eventsvc.audit.log import AuditLog, start_checkpoints
from eventsvc.bootstrap import BootstrapInvalid, import_bootstrap_token
from eventsvc.credentials import (
    Credentials,
    MissingCredential,
    credentials_from_settings,
    credentials_from_vault,
    open_vault_session,
)
from eventsvc.metrics import start_metrics_server, worker_exited
from eventsvc.observability import configure_logging, init_tracing
from eventsvc.schema import SchemaMismatch
from eventsvc.services import Services, build_services
from eventsvc.settings import Settings, UnsafeSettingsError, load_settings
from eventsvc.store import StoreUnavailable, connect
from eventsvc.tlsworker import load_tls_context_at_boot, ssl_context
from eventsvc.tokencache import token_cache
from eventsvc.vault.errors import VaultError
from eventsvc.vault.keeper import LeaseKeeperProcess
from eventsvc.vault.session import VaultSession

log = logging.getLogger(__name__)

THREADS_PER_WORKER = 8
AUDIT_CHECKPOINT_SECONDS = 30  # how much of a chain's tail can be cut unnoticed, at most
DENIAL_FLUSH_SECONDS = 5  # how late a closed window's denial count reaches the trail
EXIT_CONFIG_ERROR = 2
EXIT_VAULT_ERROR = 1
EXIT_SCHEMA_ERROR = 3  # = gunicorn's WORKER_BOOT_ERROR: also the status after a reload refused


def connect_services(settings: Settings, credentials: Credentials) -> Services:
    """The app's services on a new MongoDB client logged in with ``credentials`` (lazily)."""
    client = connect(
        settings,
        username=credentials.mongodb_username,
        password=credentials.mongodb_password,
        tls_cert_key_file=credentials.mongodb_cert_key_file,
        tls_ca_file=credentials.mongodb_ca_file,
    )
    return build_services(
        client[settings.mongodb_database],
        audit_key=credentials.audit_key.get_secret_value().encode(),
        token_pepper=credentials.token_pepper.get_secret_value().encode(),
        checkpoint_signer=credentials.checkpoint_signer,
        checkpoint_anchor=credentials.checkpoint_anchor,
        token_cache=token_cache(settings),
    )


def logconfig(level: str) -> dict[str, Any]:
    """gunicorn's loggers and ours through the one JSON formatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "eventsvc.observability.json_formatter"}},
        "filters": {"request": {"()": "eventsvc.observability.RequestContextFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def gunicorn_options(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    """gunicorn settings for a JSON API; HTTPS whenever a certificate is available."""
    options: dict[str, Any] = {
        "bind": [settings.bind],
        # gthread, plus the verified client certificate's subject for the app.
        "worker_class": "eventsvc.tlsworker.ClientCertThreadWorker",
        "workers": settings.workers or (os.cpu_count() or 1),
        "threads": THREADS_PER_WORKER,
        "timeout": 30,
        "graceful_timeout": 30,
        "keepalive": 5,
        "limit_request_line": 4094,
        "limit_request_fields": 50,
        "limit_request_field_size": 8190,
        "accesslog": None,  # the app writes one structured line per request
        "logconfig_dict": logconfig(settings.log_level),
        "control_socket_disable": True,
        "proc_name": "eventsvc",
    }
    if credentials.tls_cert_file and credentials.tls_key_file:
        options |= {
            "certfile": str(credentials.tls_cert_file),
            "keyfile": str(credentials.tls_key_file),
            "ssl_context": ssl_context,
            "post_worker_init": load_tls_context_at_boot,
        }
        if settings.tls_client_ca_file is not None:
            options["ca_certs"] = str(settings.tls_client_ca_file)
            options["cert_reqs"] = (
                ssl.CERT_REQUIRED if settings.tls_require_client_cert else ssl.CERT_OPTIONAL
            )
    return options


class EventsvcServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn, configured in code rather than from a config file or argv.

    With a ``vault`` session, the master hands it to a
    :class:`~eventsvc.vault.keeper.LeaseKeeperProcess` once gunicorn handles
    signals, and stops that process on exit.
    """

    def __init__(
        self, settings: Settings, credentials: Credentials, vault: VaultSession | None = None
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.vault = vault
        self.keeper = LeaseKeeperProcess(vault) if vault is not None else None
        self.reloaded = False
        self.serving = False  # set by when_ready: gunicorn has bound its sockets
        self.worker_app: Flask | None = None  # in a worker: the app it serves
        self.worker_audit: AuditLog | None = None  # in a worker: its audit writer
        super().__init__()

    def run(self) -> None:
        """Run gunicorn; if it exits before serving (say, the port is taken), fail closed.

        gunicorn exits from inside ``Arbiter.start`` when it cannot bind,
        before any hook that would clean up. By then we hold a Vault token
        and key/certificate files: revoke and remove them, then exit with one
        line, so a failed start leaves no live credential behind.
        """
        try:
            super().run()
        except SystemExit:
            if self.serving or self.vault is None:
                raise
            self.vault.shutdown()
            _fail(
                EXIT_VAULT_ERROR,
                f"could not start serving on {self.settings.bind} (address in use?); "
                "the Vault token and certificates were revoked and the files removed",
            )

    def load_config(self) -> None:
        """Runs in the master at start and at every reload."""
        for key, value in gunicorn_options(self.settings, self.credentials).items():
            self.cfg.set(key, value)
        self.cfg.set("child_exit", worker_exited)  # metrics: forget a dead worker's gauges
        self.cfg.set("on_reload", self.mark_reloaded)
        self.cfg.set("worker_exit", self.worker_exiting)
        self.cfg.set("when_ready", self.start_lease_keeper)
        if self.keeper is not None:
            self.cfg.set("on_exit", self.stop_lease_keeper)

    def load(self) -> Any:
        """Runs in each worker after the fork: its own MongoDB client, services and app."""
        init_tracing(self.settings)  # before the MongoClient: pymongo reads listeners at creation
        services = connect_services(self.settings, self.credentials)
        self.check_schema(services)
        services.tokens.watch_revocations()  # the token cache is used while this watch is live
        start_checkpoints(services.audit, AUDIT_CHECKPOINT_SECONDS)
        self.worker_audit = services.audit
        app = create_app(
            self.settings,
            services,
            certificates_expire_at=self.credentials.certificates_expire_at(),
            vault_status_file=self.credentials.vault_status_file,
        )
        start_denial_flushes(denial_recorder(app), DENIAL_FLUSH_SECONDS)
        self.worker_app = app
        return app

    def worker_exiting(self, arbiter: Arbiter, worker: Any) -> None:
        """gunicorn worker_exit hook (in the worker, at exit and at every reload).

        First the open windows' denial counts, then a final checkpoint that
        signs them with everything else this worker wrote.
        """
        self.flush_denials()
        self.final_checkpoint()

    def flush_denials(self) -> None:
        """Write the open windows' denial counts."""
        if self.worker_app is not None:
            denial_recorder(self.worker_app).flush(everything=True)

    def check_schema(self, services: Services) -> None:
        """Check (never change) collections, validators and indexes before serving.

        A schema that differs always stops the worker, and with it the
        server: serving on a tampered audit collection is worse than not
        serving. The master has already checked once (:func:`main`), so this
        catches a change made while the server ran, at the next reload (a
        certificate rotation, or SIGHUP). The worker logs one line and exits
        with gunicorn's "worker failed to boot" status, 3, on which the
        master stops every worker, runs its exit hook (the lease keeper
        revokes the token and certificates) and exits 3 itself.

        A MongoDB that does not answer stops the server at startup (fail
        closed: the operator sees it). After a reload it does not: gunicorn
        halts the whole server when a new worker fails to boot, which would
        turn one refused credential (say, a revoked certificate) into an
        outage. The worker serves 503s (/readyz says why) and asks the lease
        keeper for a new credential.
        """
        try:
            services.check_schema()
        except SchemaMismatch as exc:
            log.error("schema error: worker %d refuses to serve: %s", os.getpid(), exc)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None
        except (StoreUnavailable, PyMongoError) as exc:
            if not self.reloaded:
                raise
            cause = exc.__cause__ or exc
            log.error(
                "mongodb refused worker %d at boot; it serves 503 until MongoDB answers: %s",
                os.getpid(),
                cause,
            )
            if self.keeper is not None:
                self.keeper.request_new_mongo_credential()

    def final_checkpoint(self) -> None:
        """Sign the worker's last chain heads, so that no unsigned tail is left
        behind by a rotation or a shutdown. A failure is logged: the worker
        is exiting anyway, and the gap is bounded by the interval checkpoints.
        """
        if self.worker_audit is None:
            return
        try:
            self.worker_audit.checkpoint("exit")
        except Exception:
            log.exception("audit: final checkpoint of worker %d failed", os.getpid())

    def mark_reloaded(self, arbiter: Arbiter) -> None:
        """gunicorn on_reload hook (master): workers from now on tolerate MongoDB at boot."""
        self.reloaded = True

    def start_lease_keeper(self, arbiter: Arbiter) -> None:
        """gunicorn when_ready hook: sockets are bound, the master handles SIGHUP, no worker yet."""
        self.serving = True
        if self.keeper is not None and self.keeper.pid is None:
            self.keeper.start(os.getpid(), arbiter.LISTENERS)

    def stop_lease_keeper(self, arbiter: Arbiter) -> None:
        """gunicorn on_exit hook (master, workers already stopped): revoke and clean up."""
        if self.keeper is not None:
            self.keeper.stop()


def main() -> None:
    """Start the service; on bad configuration or a Vault failure exit with one clear line."""
    try:
        settings = load_settings()
    except (ValidationError, UnsafeSettingsError) as error:
        _fail(EXIT_CONFIG_ERROR, f"configuration error: {_one_line(error)}")
    configure_logging(settings.log_level)
    if settings.metrics_port is not None:
        # In the master, which outlives reloads and aggregates every worker's files.
        try:
            start_metrics_server(settings.metrics_port)
        except (RuntimeError, OSError) as error:
            _fail(EXIT_CONFIG_ERROR, f"configuration error: metrics: {error}")
    vault: VaultSession | None = None
    if settings.uses_vault:
        credentials, vault = _start_from_vault(settings)
    else:
        try:
            credentials = credentials_from_settings(settings)
        except MissingCredential as error:
            _fail(EXIT_CONFIG_ERROR, f"configuration error: {error}")
    if credentials.tls_cert_file is None and settings.profile == "prod":
        _fail(EXIT_CONFIG_ERROR, "configuration error: prod serves HTTPS only; no certificate")
    if vault is None:  # with Vault, _start_from_vault has checked it
        try:
            check_schema_once(settings, credentials)
        except SchemaMismatch as error:
            _fail(EXIT_SCHEMA_ERROR, f"schema error: {error}")
        except (PyMongoError, StoreUnavailable) as error:
            _fail(EXIT_VAULT_ERROR, f"mongodb error: {_cause(error)}")
    log.info("starting eventsvc on %s (profile %s)", settings.bind, settings.profile)
    EventsvcServer(settings, credentials, vault).run()


def _start_from_vault(settings: Settings) -> tuple[Credentials, VaultSession]:
    """Log in and issue credentials; fail closed (exit, no fallback) on any Vault error."""
    try:
        session = open_vault_session(settings)
    except ValueError as error:
        _fail(EXIT_CONFIG_ERROR, f"configuration error: {error}")
    except (VaultError, OSError) as error:
        _fail(EXIT_VAULT_ERROR, f"vault error: {error}")
    try:
        credentials = credentials_from_vault(settings, session)
        import_admin_bootstrap(settings, credentials, session)
    except SchemaMismatch as error:
        session.shutdown()
        _fail(EXIT_SCHEMA_ERROR, f"schema error: {error}")
    except (VaultError, OSError, BootstrapInvalid, PyMongoError, StoreUnavailable) as error:
        session.shutdown()  # revoke the token and whatever was issued before the failure
        _fail(EXIT_VAULT_ERROR, f"vault error: {error}")
    return credentials, session


def import_admin_bootstrap(
    settings: Settings, credentials: Credentials, vault: VaultSession
) -> None:
    """Check the schema, then register the operator's first admin token if Vault holds one.

    Runs in the master on a short-lived client, closed before workers fork.
    The check comes first: the token's digest and its audit record must not
    land in collections without their indexes and validators.
    """
    with closing(connect_services(settings, credentials)) as services:
        services.check_schema()
        import_bootstrap_token(vault, services.tokens)


def check_schema_once(settings: Settings, credentials: Credentials) -> None:
    """In the master, before any worker: raise SchemaMismatch if the schema differs."""
    with closing(connect_services(settings, credentials)) as services:
        services.check_schema()


def _fail(status: int, message: str) -> Any:
    """Write one line to stderr and exit: no traceback, nothing to parse."""
    sys.stderr.write(f"eventsvc: {message}\n")
    raise SystemExit(status)


def _cause(error: Exception) -> str:
    """StoreUnavailable says "unavailable"; its cause says why (refused, timed out...)."""
    return str(error.__cause__ or error)


def _one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"EVENTSVC_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors(include_url=False, include_input=False)
        )
    return str(error)


if __name__ == "__main__":
    main()
