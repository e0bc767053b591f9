"""Logs, traces and request metrics: how an operator sees what a request did.

Logging: one JSON formatter; every line emitted while serving a request
carries its request id, trace id and actor. Values from requests are
JSON-encoded by the formatter, so a newline or a forged field in user input
cannot create a fake log line (log injection).

Tracing: OpenTelemetry spans for Flask and pymongo. The W3C ``traceparent``
header of an incoming request (the CLI sends one) becomes the parent of the
Flask span, and MongoDB command spans are its children, so one trace id links
CLI → API → MongoDB. The trace id is returned in ``X-Trace-Id``. Spans are
exported to OTLP, the console or nowhere (``otel_exporter``); even with no
exporter a real tracer provider runs, so trace ids exist and propagate.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from flask import Flask, Response, g, has_request_context, request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pythonjsonlogger.json import JsonFormatter

from eventsvc import __version__, metrics
from eventsvc.settings import Settings

log = logging.getLogger(__name__)

TRACE_ID_HEADER = "X-Trace-Id"
SERVICE_NAME = "eventsvc"


# --- Logging ---------------------------------------------------------------


def current_trace_id() -> str | None:
    """The active span's trace id as 32 hex digits, or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


class RequestContextFilter(logging.Filter):
    """Add ``request_id``, ``actor`` and ``trace_id`` to every record.

    ``actor`` is what the auth layer put on ``g`` (a token id, never the
    token). ``trace_id`` also exists outside requests (a CLI command's trace).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            record.actor = g.get("actor")
        else:
            record.request_id = None
            record.actor = None
        record.trace_id = current_trace_id()
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}{request_id}{trace_id}{actor}",
        style="{",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        timestamp=False,
    )


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records, as JSON lines, to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# --- Tracing ---------------------------------------------------------------

# This process's tracer provider (at most one: OpenTelemetry allows setting the
# global provider once) and the extra exporters tests attached to it.
_PROVIDER: list[TracerProvider] = []
_EXTRA_EXPORTERS: list[SpanExporter] = []
_TRACING_LOCK = threading.Lock()


def _one_line_json(span: ReadableSpan) -> str:
    text: str = span.to_json(indent=None)
    return text + "\n"


def configured_exporter(settings: Settings) -> SpanExporter | None:
    """The span exporter ``settings`` ask for (None: spans are not exported)."""
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter(out=sys.stdout, formatter=_one_line_json)
    if settings.otel_exporter == "otlp":
        # Without an endpoint the exporter reads OTEL_EXPORTER_OTLP_* (default localhost:4318).
        return OTLPSpanExporter(endpoint=settings.otel_endpoint)
    return None


def init_tracing(settings: Settings, span_exporter: SpanExporter | None = None) -> TracerProvider:
    """Create this process's tracer provider and trace pymongo; later calls reuse it.

    Call it in each gunicorn worker (after the fork) and *before* creating a
    MongoClient: pymongo reads its global listeners when a client is built.
    ``span_exporter`` adds an exporter (tests pass an in-memory one); it is
    attached once however often it is passed.
    """
    with _TRACING_LOCK:
        if not _PROVIDER:
            provider = TracerProvider(
                resource=Resource.create(
                    {"service.name": SERVICE_NAME, "service.version": __version__}
                )
            )
            exporter = configured_exporter(settings)
            if exporter is not None:
                provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            # W3C traceparent only: no baggage from callers we do not control.
            set_global_textmap(TraceContextTextMapPropagator())
            PymongoInstrumentor().instrument(tracer_provider=provider)
            _PROVIDER.append(provider)
            log.info("tracing: exporter %s", settings.otel_exporter)
        provider = _PROVIDER[0]
        if span_exporter is not None and span_exporter not in _EXTRA_EXPORTERS:
            provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            _EXTRA_EXPORTERS.append(span_exporter)
        return provider


# --- Flask glue --------------------------------------------------------------


def start_request_timer() -> None:
    g.started_at = time.perf_counter()


def request_seconds() -> float | None:
    """How long this request has taken so far (one clock for metrics and the access log)."""
    started: float | None = g.get("started_at")
    return None if started is None else time.perf_counter() - started


def route_template() -> str | None:
    """The matched route (``/api/v1/events/<event_id>``), not the raw path: bounded labels."""
    return request.url_rule.rule if request.url_rule is not None else None


def record_request_metrics(response: Response) -> Response:
    """Count the request by route template (bounded), not by raw path."""
    seconds = request_seconds() or 0.0
    metrics.record_request(request.method, route_template(), response.status_code, seconds)
    return response


def init_observability(app: Flask, settings: Settings) -> None:
    """Trace this app's requests and count them; call before other middleware.

    Registered first, the Flask span starts before any other ``before_request``
    hook runs, so every log line of the request carries the trace id.
    """
    provider = init_tracing(settings)
    FlaskInstrumentor.instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
    app.before_request(start_request_timer)
    app.after_request(record_request_metrics)
