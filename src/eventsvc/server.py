"""Production entry point: the app under gunicorn, HTTPS only outside tests.

Why gunicorn's ``gthread`` workers: a request spends most of its time waiting
on MongoDB, so threads give concurrency cheaply, while one process per CPU
gives CPU parallelism despite the GIL. Each worker process builds its own
MongoClient after the fork (pymongo clients are not fork-safe) and shares its
connection pool between its threads.

The master process resolves credentials once (from settings in dev/test, from
Vault in prod); workers inherit them through the fork. A graceful reload
(SIGHUP) starts workers with fresh credentials and certificates and lets the
old ones finish their in-flight requests: that is how rotation avoids
downtime.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from pydantic import SecretStr, ValidationError

from eventsvc.app import create_app
from eventsvc.observability import configure_logging
from eventsvc.settings import Settings, UnsafeSettingsError, load_settings
from eventsvc.store import EventStore, connect

log = logging.getLogger(__name__)

THREADS_PER_WORKER = 8
# TLS 1.2 ciphers with forward secrecy and AEAD only (TLS 1.3 suites are
# always on and not configurable here).
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class Credentials:
    """What the service needs that is secret: a MongoDB login and its HTTPS keys."""

    mongodb_username: str | None = None
    mongodb_password: SecretStr | None = None
    mongodb_cert_key_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


def credentials_from_settings(settings: Settings) -> Credentials:
    """Credentials given directly in settings: allowed in dev/test only (see Settings.check)."""
    return Credentials(
        mongodb_username=settings.mongodb_username,
        mongodb_password=settings.mongodb_password,
        mongodb_cert_key_file=settings.mongodb_tls_cert_key_file,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
    )


def build_store(settings: Settings, credentials: Credentials) -> EventStore:
    """Connect to MongoDB with the current credentials and make sure the schema exists."""
    client = connect(
        settings,
        username=credentials.mongodb_username,
        password=credentials.mongodb_password,
        tls_cert_key_file=credentials.mongodb_cert_key_file,
    )
    store = EventStore(client, settings.mongodb_database)
    store.ensure_schema()
    return store


def ssl_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """gunicorn hook: TLS 1.2 minimum, modern ciphers, no compression or renegotiation."""
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MODERN_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


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
        "worker_class": "gthread",
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
        }
        if settings.tls_client_ca_file is not None:
            options["ca_certs"] = str(settings.tls_client_ca_file)
            options["cert_reqs"] = (
                ssl.CERT_REQUIRED if settings.tls_require_client_cert else ssl.CERT_OPTIONAL
            )
    return options


class EventsvcServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn, configured in code rather than from a config file or argv."""

    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        self.settings = settings
        self.credentials = credentials
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings, self.credentials).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Runs in each worker after the fork: its own MongoDB client and app."""
        return create_app(self.settings, build_store(self.settings, self.credentials))


def main() -> None:
    """Start the service; on bad configuration exit 2 with one clear line."""
    try:
        settings = load_settings()
    except (ValidationError, UnsafeSettingsError) as error:
        sys.stderr.write(f"eventsvc: configuration error: {_one_line(error)}\n")
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    credentials = credentials_from_settings(settings)
    if credentials.tls_cert_file is None and settings.profile == "prod":
        sys.stderr.write("eventsvc: configuration error: prod serves HTTPS only; no certificate\n")
        raise SystemExit(2)
    log.info("starting eventsvc on %s (profile %s)", settings.bind, settings.profile)
    EventsvcServer(settings, credentials).run()


def _one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"EVENTSVC_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors(include_url=False, include_input=False)
        )
    return str(error)


if __name__ == "__main__":
    main()
