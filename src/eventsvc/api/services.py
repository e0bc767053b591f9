"""Typed access to the app's services from inside a request.

:func:`eventsvc.app.create_app` stores the :class:`~eventsvc.services.Services`
it is given under one extension key; routes call :func:`event_store`,
:func:`token_store`, :func:`audit_log` or :func:`denial_recorder` instead
of indexing ``current_app.extensions`` with strings.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import Flask, current_app

from eventsvc.audit.denials import DenialRecorder
from eventsvc.audit.log import AuditLog
from eventsvc.services import Services
from eventsvc.store import EventStore
from eventsvc.tokens import TokenStore

SERVICES_KEY = "eventsvc.services"
CERTIFICATES_EXPIRE_AT_KEY = "eventsvc.certificates_expire_at"
DENIALS_KEY = "eventsvc.denials"
VAULT_STATUS_FILE_KEY = "eventsvc.vault_status_file"


def install_services(
    app: Flask,
    services: Services,
    certificates_expire_at: datetime | None,
    vault_status_file: Path | None = None,
) -> None:
    """Make ``services``, certificate expiry, Vault's status file, a denial recorder reachable.

    The recorder is per app (per worker process): its windows are in memory.
    """
    app.extensions[SERVICES_KEY] = services
    app.extensions[CERTIFICATES_EXPIRE_AT_KEY] = certificates_expire_at
    app.extensions[VAULT_STATUS_FILE_KEY] = vault_status_file
    app.extensions[DENIALS_KEY] = DenialRecorder(services.audit)


def current_services() -> Services:
    """The current app's services."""
    found = current_app.extensions[SERVICES_KEY]
    if not isinstance(found, Services):
        raise TypeError(f"{SERVICES_KEY} holds {type(found).__name__}, not Services")
    return found


def event_store() -> EventStore:
    return current_services().events


def token_store() -> TokenStore:
    return current_services().tokens


def audit_log() -> AuditLog:
    return current_services().audit


def denial_recorder(app: Flask | None = None) -> DenialRecorder:
    """The app's denial recorder (``app``: outside a request, e.g. at worker exit)."""
    found = (app or current_app).extensions[DENIALS_KEY]
    if not isinstance(found, DenialRecorder):
        raise TypeError(f"{DENIALS_KEY} holds {type(found).__name__}, not DenialRecorder")
    return found


def certificates_expire_at() -> datetime | None:
    """When the first of this worker's certificates expires; None: it has none (see /readyz)."""
    found = current_app.extensions.get(CERTIFICATES_EXPIRE_AT_KEY)
    return found if isinstance(found, datetime) else None


def vault_status_file() -> Path | None:
    """Where the lease keeper says whether Vault answers; None: no Vault (see /readyz)."""
    found = current_app.extensions.get(VAULT_STATUS_FILE_KEY)
    return found if isinstance(found, Path) else None
