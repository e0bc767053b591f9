"""One trace id from the caller's traceparent to the MongoDB spans and the logs.

Real mongod, real app; spans go to an in-memory exporter passed to
``init_tracing``. The app here uses its own MongoClient, created after
tracing is initialised, as the server does in each worker (pymongo reads its
global listeners when a client is built).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from pymongo import MongoClient

from eventsvc import metrics
from eventsvc.api.services import token_store
from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.observability import (
    TRACE_ID_HEADER,
    RequestContextFilter,
    init_tracing,
    json_formatter,
)
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore, connect
from eventsvc.tokens import SCOPES, TokenStore
from support import (
    CHECKPOINT_SEED,
    CHECKPOINT_SIGNER,
    TEST_CONTEXT,
    coverage_env,
    free_port,
    write_test_pki,
)

APP_USERNAME = "eventsvc-test"  # tests/conftest.py's app user
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
EVENTS = "/api/v1/events"

SPANS = InMemorySpanExporter()


@pytest.fixture(scope="module")
def traced_store(
    settings: Settings, app_password: SecretStr, audit_key: bytes
) -> Iterator[EventStore]:
    init_tracing(settings, span_exporter=SPANS)
    client = connect(settings, username=APP_USERNAME, password=app_password)
    audit = AuditLog(client[settings.mongodb_database], audit_key, CHECKPOINT_SIGNER)
    store = EventStore(client, settings.mongodb_database, audit)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def traced_app(
    settings: Settings, traced_store: EventStore, token_pepper: SecretStr, clean_db: None
) -> Flask:
    pepper = token_pepper.get_secret_value().encode()
    tokens = TokenStore(traced_store.database, pepper, traced_store.audit)
    services = Services(events=traced_store, tokens=tokens, audit=traced_store.audit)
    app = create_app(settings, services)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def token(traced_app: Flask) -> str:
    with traced_app.app_context():
        tokens = token_store()
    return tokens.create("obs", sorted(SCOPES), timedelta(hours=1), TEST_CONTEXT).token


@pytest.fixture
def traced_client(traced_app: Flask, token: str) -> FlaskClient:
    client = traced_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[str]]]:
    """Every record, from every logger, through the production formatter and filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestContextFilter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: stream.getvalue().splitlines()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def spans_of(trace_id: str) -> list[ReadableSpan]:
    return [
        span
        for span in SPANS.get_finished_spans()
        if span.context is not None and format_trace_id(span.context.trace_id) == trace_id
    ]


def test_traceparent_links_response_flask_span_mongodb_spans_and_logs(
    traced_client: FlaskClient, log_lines: Callable[[], list[str]]
) -> None:
    SPANS.clear()
    response = traced_client.post(
        EVENTS, json={"name": "traced"}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 201
    assert response.headers[TRACE_ID_HEADER] == TRACE_ID

    spans = spans_of(TRACE_ID)
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.parent is not None
    assert format_span_id(server.parent.span_id) == PARENT_SPAN_ID
    assert server.attributes is not None
    assert server.attributes["http.route"] == EVENTS
    mongo = [span for span in spans if span.kind is SpanKind.CLIENT]
    assert {span.name for span in mongo} >= {"eventsvc.insert"}
    assert all(span.attributes and span.attributes["db.system"] == "mongodb" for span in mongo)
    assert server.context is not None
    assert all(span.parent and span.parent.span_id == server.context.span_id for span in mongo)

    records = [json.loads(line) for line in log_lines()]
    (access,) = [record for record in records if record["logger"] == "eventsvc.access"]
    assert access["trace_id"] == TRACE_ID
    assert access["request_id"] == response.headers["X-Request-Id"]
    assert access["actor"].startswith("token:")
    assert access["route"] == EVENTS
    assert access["status"] == 201
    assert isinstance(access["latency_ms"], float)


def test_without_traceparent_a_new_trace_is_started_and_returned(
    traced_client: FlaskClient,
) -> None:
    response = traced_client.get(EVENTS)
    assert response.status_code == 200
    trace_id = response.headers[TRACE_ID_HEADER]
    assert len(trace_id) == 32
    assert trace_id != TRACE_ID
    assert any(span.kind is SpanKind.CLIENT for span in spans_of(trace_id))


def test_a_malformed_traceparent_is_ignored(traced_client: FlaskClient) -> None:
    response = traced_client.get(
        EVENTS, environ_overrides={"HTTP_TRACEPARENT": "00-zz\n-forged-01"}
    )
    assert response.status_code == 200
    trace_id = response.headers[TRACE_ID_HEADER]
    assert len(trace_id) == 32
    assert all(c in "0123456789abcdef" for c in trace_id)


def test_hostile_path_and_headers_cannot_forge_log_lines(
    traced_client: FlaskClient, log_lines: Callable[[], list[str]]
) -> None:
    forged = '\n{"level": "CRITICAL", "logger": "eventsvc.auth", "message": "forged"}\n'
    response = traced_client.get(
        EVENTS + "/%0A%7B%22level%22%3A%22CRITICAL%22%7D",
        query_string={"cursor": forged},
        # Raw environ: the test client (like gunicorn) refuses newlines in headers.
        environ_overrides={"HTTP_X_REQUEST_ID": forged, "HTTP_TRACEPARENT": forged},
    )
    assert response.status_code in {400, 404}
    records = [json.loads(line) for line in log_lines()]  # each line is one JSON object
    assert records
    assert all(record["level"] != "CRITICAL" for record in records)
    (access,) = [record for record in records if record["logger"] == "eventsvc.access"]
    assert access["path"] == EVENTS + '/\n{"level":"CRITICAL"}'
    assert access["request_id"] != forged  # a malformed X-Request-Id is replaced


def test_no_secret_reaches_logs_or_spans(
    traced_client: FlaskClient,
    token: str,
    app_password: SecretStr,
    token_pepper: SecretStr,
    log_lines: Callable[[], list[str]],
) -> None:
    SPANS.clear()
    created = traced_client.post(EVENTS, json={"name": "secret-check"})
    assert created.status_code == 201
    traced_client.get(EVENTS)
    traced_client.get(EVENTS, headers={"Authorization": "Bearer not-a-real-token-but-secret"})
    spans_text = "".join(span.to_json() for span in SPANS.get_finished_spans())
    logs_text = "\n".join(log_lines())
    secrets = [
        token,
        token.split(".")[-1],
        "not-a-real-token-but-secret",
        app_password.get_secret_value(),
        token_pepper.get_secret_value(),
    ]
    for secret in secrets:
        assert secret not in logs_text
        assert secret not in spans_text


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_request_metrics_use_the_route_template_and_status(traced_client: FlaskClient) -> None:
    created: dict[str, Any] = {"method": "POST", "route": EVENTS, "status": "201"}
    missing: dict[str, Any] = {
        "method": "GET",
        "route": EVENTS + "/<event_id>",
        "status": "404",
    }
    before_created = sample("eventsvc_http_requests_total", **created)
    before_missing = sample("eventsvc_http_requests_total", **missing)
    before_latency = sample("eventsvc_http_request_duration_seconds_count", **created)

    assert traced_client.post(EVENTS, json={"name": "counted"}).status_code == 201
    for _ in range(2):
        assert traced_client.get(EVENTS + "/" + "0" * 24).status_code == 404

    assert sample("eventsvc_http_requests_total", **created) == before_created + 1
    assert sample("eventsvc_http_requests_total", **missing) == before_missing + 2
    assert sample("eventsvc_http_request_duration_seconds_count", **created) == before_latency + 1
    # The raw path never becomes a label value.
    raw = {"method": "GET", "route": EVENTS + "/" + "0" * 24, "status": "404"}
    assert REGISTRY.get_sample_value("eventsvc_http_requests_total", raw) is None


def test_mongodb_pool_gauges_follow_a_real_client(
    settings: Settings, app_password: SecretStr
) -> None:
    open_before = sample("eventsvc_mongodb_pool_connections")
    client: MongoClient[dict[str, Any]] = MongoClient(
        settings.mongodb_hosts,
        replicaset=settings.mongodb_replica_set,
        username=APP_USERNAME,
        password=app_password.get_secret_value(),
        authSource=settings.mongodb_database,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        event_listeners=[metrics.MongoPoolMetrics()],
    )
    try:
        client[settings.mongodb_database].command("ping")
        assert sample("eventsvc_mongodb_pool_connections") >= open_before + 1
        assert sample("eventsvc_mongodb_pool_checked_out_connections") >= 0
    finally:
        client.close()
    assert sample("eventsvc_mongodb_pool_connections") == open_before


# --- The real server: gunicorn, 2 workers, console spans, metrics port ---------


@dataclass
class ObservedServer:
    base_url: str
    ca_file: Path
    metrics_url: str
    token: str
    spans_file: Path
    log_file: Path


@pytest.fixture(scope="module")
def observed_server(
    tmp_path_factory: pytest.TempPathFactory,
    settings: Settings,
    app_password: SecretStr,
    token_pepper: SecretStr,
    tokens: TokenStore,
    audit_key: bytes,
) -> Iterator[ObservedServer]:
    """``python -m eventsvc.server`` with console spans and multiprocess metrics."""
    workdir = tmp_path_factory.mktemp("observed")
    ca_file, cert_file, key_file = write_test_pki(workdir / "pki")
    multiproc_dir = workdir / "prometheus"
    multiproc_dir.mkdir()
    port, metrics_port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(workdir),
        **coverage_env(),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "EVENTSVC_PROFILE": "test",
        "EVENTSVC_BIND": f"127.0.0.1:{port}",
        "EVENTSVC_WORKERS": "2",
        "EVENTSVC_METRICS_PORT": str(metrics_port),
        "EVENTSVC_OTEL_EXPORTER": "console",
        "EVENTSVC_TLS_CERT_FILE": str(cert_file),
        "EVENTSVC_TLS_KEY_FILE": str(key_file),
        "EVENTSVC_MONGODB_HOSTS": settings.mongodb_hosts,
        "EVENTSVC_MONGODB_REPLICA_SET": settings.mongodb_replica_set or "",
        "EVENTSVC_MONGODB_TLS": "false",
        "EVENTSVC_MONGODB_AUTH_MODE": "scram",
        "EVENTSVC_MONGODB_USERNAME": APP_USERNAME,
        "EVENTSVC_MONGODB_PASSWORD": app_password.get_secret_value(),
        "EVENTSVC_TOKEN_PEPPER": token_pepper.get_secret_value(),
        "EVENTSVC_AUDIT_HMAC_KEY": audit_key.decode(),
        "EVENTSVC_AUDIT_CHECKPOINT_SEED": base64.urlsafe_b64encode(CHECKPOINT_SEED).decode(),
        "EVENTSVC_RATE_LIMIT_PER_ADDRESS": "100000/minute",
        "EVENTSVC_RATE_LIMIT_PER_TOKEN": "100000/minute",
    }
    spans_file, log_file = workdir / "spans.jsonl", workdir / "server.log"
    with spans_file.open("wb") as stdout, log_file.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventsvc.server"], env=env, stdout=stdout, stderr=stderr
        )
    token = tokens.create("obs-e2e", sorted(SCOPES), timedelta(hours=1), TEST_CONTEXT).token
    server = ObservedServer(
        f"https://127.0.0.1:{port}",
        ca_file,
        f"http://127.0.0.1:{metrics_port}/metrics",
        token,
        spans_file,
        log_file,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{server.base_url}/healthz", verify=str(ca_file), timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log_text = log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"eventsvc server did not start:\n{log_text}")
        time.sleep(0.2)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def scrape(server: ObservedServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(server.metrics_url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_one_trace_id_from_caller_to_mongodb_spans_and_logs_in_the_real_server(
    observed_server: ObservedServer,
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    response = requests.get(
        observed_server.base_url + EVENTS,
        headers={
            "Authorization": f"Bearer {observed_server.token}",
            "traceparent": f"00-{trace_id}-b7ad6b7169203331-01",
        },
        verify=str(observed_server.ca_file),
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers[TRACE_ID_HEADER] == trace_id

    deadline = time.monotonic() + 15  # the batch processor exports every 5 s
    kinds: set[str] = set()
    while time.monotonic() < deadline and kinds != {"SpanKind.SERVER", "SpanKind.CLIENT"}:
        time.sleep(0.5)
        spans = [json.loads(line) for line in observed_server.spans_file.read_text().splitlines()]
        kinds = {span["kind"] for span in spans if span["context"]["trace_id"] == "0x" + trace_id}
    assert kinds == {"SpanKind.SERVER", "SpanKind.CLIENT"}  # Flask span and MongoDB spans

    records = [json.loads(line) for line in observed_server.log_file.read_text().splitlines()]
    (access,) = [
        record
        for record in records
        if record["logger"] == "eventsvc.access" and record["trace_id"] == trace_id
    ]
    assert access["actor"].startswith("token:")
    assert observed_server.token not in observed_server.log_file.read_text()


def test_metrics_port_aggregates_every_worker(observed_server: ObservedServer) -> None:
    key = (
        "eventsvc_http_requests_total",
        frozenset({("method", "GET"), ("route", "/healthz"), ("status", "200")}),
    )
    before = scrape(observed_server).get(key, 0.0)
    for _ in range(8):  # a new connection each: both workers may answer
        requests.get(
            observed_server.base_url + "/healthz", verify=str(observed_server.ca_file), timeout=5
        )
    after = scrape(observed_server)
    assert after[key] == before + 8
    assert after[("eventsvc_mongodb_pool_connections", frozenset())] >= 0
