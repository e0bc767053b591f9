"""The Flask application factory."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask_cors import CORS
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix

from eventsvc import __version__
from eventsvc.api import audit as api_audit
from eventsvc.api import docs, events, health
from eventsvc.api import tokens as api_tokens
from eventsvc.api.middleware import (
    DatabaseDeadline,
    register_middleware,
    register_request_checks,
)
from eventsvc.api.problems import register_error_handlers, validation_problem
from eventsvc.api.ratelimits import install_rate_limits
from eventsvc.api.services import install_services
from eventsvc.observability import init_observability
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore


def create_app(
    settings: Settings,
    services: Services,
    *,
    certificates_expire_at: datetime | None = None,
    vault_status_file: Path | None = None,
) -> OpenAPI:
    """Build the app around services that already exist (see ``eventsvc.services``).

    Services are passed in (not created here) so tests and the server decide
    how MongoDB is reached; a new credential means new workers with new
    services (see :mod:`eventsvc.server`). ``certificates_expire_at`` is when
    the worker's first certificate expires, and ``vault_status_file`` where the
    lease keeper says whether Vault answers, both for /readyz.
    """
    app = OpenAPI(
        __name__,
        info=Info(
            title="eventsvc",
            version=__version__,
            description="Events with a start_event and a stop_event timestamp.",
        ),
        doc_ui=False,
        # No /static route: nothing is served from disk but the docs' own assets
        # (api/docs.py), and every route must carry an authorisation decision.
        static_folder=None,
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}},
        validation_error_status=400,
        validation_error_callback=validation_problem,
    )
    app.config.update(
        DEBUG=settings.debug,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    install_services(app, services, certificates_expire_at, vault_status_file)

    init_observability(app, settings)  # first: its span wraps the other middleware
    register_middleware(app)
    register_error_handlers(app)
    protect_edges(app, settings, services.events)
    register_request_checks(app)  # after the rate limits: count, then authorise, then parse
    app.register_api(health.blueprint)
    app.register_api(events.blueprint)
    app.register_api(api_tokens.blueprint)
    app.register_api(api_audit.blueprint)
    app.register_blueprint(docs.blueprint)
    docs.finish_document(app.api_doc)  # generated once, cached by flask-openapi3
    app.wsgi_app = DatabaseDeadline(  # type: ignore[method-assign]
        app.wsgi_app, settings.mongodb_timeout_ms / 1000
    )
    return app


def protect_edges(app: OpenAPI, settings: Settings, store: EventStore) -> None:
    """Proxy trust, CORS and rate limits: what stands between the internet and a route."""
    if settings.trusted_proxy_count:
        # Only then is X-Forwarded-For believed; otherwise anyone could pick their address.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_count, x_proto=settings.trusted_proxy_count
        )
    if settings.cors_origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": settings.cors_origins}},
            methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match"],
            expose_headers=["ETag", "Location", "X-Request-Id", "X-Trace-Id", "Retry-After"],
            supports_credentials=False,
            max_age=600,
        )
    # The probes are not counted (orchestrators poll them); every other request is.
    install_rate_limits(app, settings, store.database, exempt_blueprints=[health.blueprint.name])
