"""Logging fields, log injection, exporter choice and metric labels, without services."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, g
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from prometheus_client import REGISTRY

from eventsvc import metrics
from eventsvc.observability import (
    RequestContextFilter,
    configured_exporter,
    current_trace_id,
    init_tracing,
    json_formatter,
)
from eventsvc.settings import Settings, UnsafeSettingsError

TEST_SETTINGS = Settings(profile="test", mongodb_tls=False)


@pytest.fixture
def log_output() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the production formatter and filter into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("tests.observability")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_has_every_field_and_null_context_outside_requests(
    log_output: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log_output
    logger.info("hello")
    (line,) = lines_of(stream)
    assert line["message"] == "hello"
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.observability"
    assert line["timestamp"]
    assert line["request_id"] is None
    assert line["trace_id"] is None
    assert line["actor"] is None


def test_request_context_and_span_fill_request_id_actor_and_trace_id(
    log_output: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log_output
    tracer = init_tracing(TEST_SETTINGS).get_tracer("tests")
    with Flask(__name__).test_request_context("/"), tracer.start_as_current_span("work"):
        g.request_id = "req-12345678"
        g.actor = "token:abcdef0123456789"
        trace_id = current_trace_id()
        logger.info("inside")
    (line,) = lines_of(stream)
    assert trace_id is not None
    assert len(trace_id) == 32
    assert line["trace_id"] == trace_id
    assert line["request_id"] == "req-12345678"
    assert line["actor"] == "token:abcdef0123456789"


@pytest.mark.parametrize(
    "hostile",
    [
        'x\n{"level": "CRITICAL", "message": "forged"}',
        "x\r\nlevel=CRITICAL",
        'x", "actor": "admin',
        "x\u2028y\u0000z\x1b[31m",
    ],
)
def test_hostile_text_stays_inside_one_json_line(
    log_output: tuple[logging.Logger, io.StringIO], hostile: str
) -> None:
    logger, stream = log_output
    logger.info("value %s", hostile, extra={"path": hostile})
    raw_lines = stream.getvalue().splitlines()
    assert len(raw_lines) == 1
    line = json.loads(raw_lines[0])
    assert line["message"] == f"value {hostile}"
    assert line["path"] == hostile
    assert line["level"] == "INFO"
    assert line["actor"] is None
    assert raw_lines[0].isascii()  # no raw line separators or control characters


def test_exporter_follows_settings() -> None:
    assert configured_exporter(TEST_SETTINGS) is None
    console = Settings(profile="test", mongodb_tls=False, otel_exporter="console")
    assert isinstance(configured_exporter(console), ConsoleSpanExporter)
    otlp = Settings(
        profile="test",
        mongodb_tls=False,
        otel_exporter="otlp",
        otel_endpoint="https://collector.example:4318/v1/traces",
    )
    assert isinstance(configured_exporter(otlp), OTLPSpanExporter)


def test_prod_refuses_a_plaintext_otlp_endpoint() -> None:
    settings = Settings(profile="prod", otel_exporter="otlp", otel_endpoint="http://collector:4318")
    assert "EVENTSVC_OTEL_ENDPOINT must be an https:// URL" in settings.unsafe_reasons()
    with pytest.raises(UnsafeSettingsError):
        settings.check()


def test_tracing_is_initialised_once_per_process() -> None:
    assert init_tracing(TEST_SETTINGS) is init_tracing(TEST_SETTINGS)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_request_labels_are_bounded() -> None:
    odd = {"method": "OTHER", "route": metrics.UNMATCHED_ROUTE, "status": "404"}
    before = sample("eventsvc_http_requests_total", **odd)
    metrics.record_request("BREW", None, 404, 0.002)
    assert sample("eventsvc_http_requests_total", **odd) == before + 1
    assert sample("eventsvc_http_request_duration_seconds_count", **odd) >= 1


def test_rate_limit_audit_vault_and_certificate_metrics() -> None:
    rate_limited = sample("eventsvc_rate_limited_total")
    audit = sample("eventsvc_audit_write_failures_total")
    metrics.record_rate_limited()
    metrics.record_audit_failure()
    metrics.set_vault_token_ttl(1800)
    expires_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    metrics.set_certificate_expiry("https_server", expires_at)
    assert sample("eventsvc_rate_limited_total") == rate_limited + 1
    assert sample("eventsvc_audit_write_failures_total") == audit + 1
    assert sample("eventsvc_vault_token_ttl_seconds") == 1800
    assert sample(
        "eventsvc_certificate_expiry_timestamp_seconds", kind="https_server"
    ) == pytest.approx(expires_at.timestamp())


def test_metrics_server_refuses_to_start_without_multiprocess_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR_ENV, raising=False)
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        metrics.start_metrics_server(9464)
    monkeypatch.setenv(metrics.MULTIPROC_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        metrics.start_metrics_server(9464)
