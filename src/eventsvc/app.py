"""The Flask application factory."""

from __future__ import annotations

from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI

from eventsvc import __version__
from eventsvc.api import docs, events, health
from eventsvc.api import tokens as api_tokens
from eventsvc.api.middleware import register_middleware
from eventsvc.api.problems import register_error_handlers, validation_problem
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokens import TokenStore


def create_app(settings: Settings, store: EventStore, tokens: TokenStore) -> OpenAPI:
    """Build the app around already connected stores.

    Stores are passed in (not created here) so tests and the server decide
    how MongoDB is reached, and credential rotation can swap their client.
    """
    app = OpenAPI(
        __name__,
        info=Info(
            title="eventsvc",
            version=__version__,
            description="Events with a start_event and a stop_event timestamp.",
        ),
        doc_ui=False,
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}},
        validation_error_status=400,
        validation_error_callback=validation_problem,
    )
    app.config.update(
        DEBUG=settings.debug,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.extensions["eventsvc.store"] = store
    app.extensions["eventsvc.tokens"] = tokens
    app.extensions["eventsvc.settings"] = settings

    register_middleware(app)
    register_error_handlers(app)
    app.register_api(health.blueprint)
    app.register_api(events.blueprint)
    app.register_api(api_tokens.blueprint)
    app.register_blueprint(docs.blueprint)
    return app
