"""DAST stage against real HTTPS servers on 127.0.0.1 (throwaway CA), real scanners."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import ipaddress
import json
import re
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler, make_server

from secgate.gate import evaluate
from secgate.model import ScanContext, Severity, StageResult
from secgate.pipeline import run_stage
from secgate.policy import load_policy
from secgate.stages.dast import client, passive, probe, schemathesis, target, wapiti, zap
from secgate.taxonomy import INJECTION

REPO = Path(__file__).resolve().parents[2]
FLAWED_APP = Path(__file__).resolve().parent / "fixtures" / "dast_flawed" / "app.py"
TOOLS_BIN = REPO / ".venv-scan" / "bin"
# Small budgets: the fixture API has two operations.
FAST = {"phases": "examples,coverage", "max_examples": "10", "max_time": "20", "seed": "7"}


# --- a throwaway CA and an HTTPS server ---------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server_pem: Path


def _certificate(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("secgate test CA", "secgate test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("127.0.0.1", "secgate test CA", key, ca_key, ca=False)
    ca_file, server_pem = directory / "ca.pem", directory / "server.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key_pem)
    server_pem.chmod(0o600)
    return Pki(ca_file, server_pem)


def _load_fixture_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dast_flawed_app", FLAWED_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Served:
    base_url: str
    pki: Pki
    seen_headers: list[dict[str, str]]
    # (method, path, Authorization header) of every request the app saw
    seen_requests: list[tuple[str, str, str]]


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its version in the Server header (a passive finding)."""

    def version_string(self) -> str:
        return "fixture"

    def log_request(self, *args: Any) -> None:
        return


def start_https(app: Flask, pki: Pki) -> Any:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.server_pem)
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, ssl_context=context, request_handler=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def recording(app: Flask) -> tuple[list[dict[str, str]], list[tuple[str, str, str]]]:
    """Record the headers, and method, path and Authorization, of every request ``app`` gets."""
    headers: list[dict[str, str]] = []
    requests: list[tuple[str, str, str]] = []

    @app.before_request
    def record() -> None:
        headers.append(dict(request.headers))
        requests.append((request.method, request.path, request.headers.get("Authorization", "")))

    return headers, requests


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start the fixture app (flawed or clean) over HTTPS on 127.0.0.1, random port."""
    servers: list[Any] = []
    app_module = _load_fixture_app()

    def start(flawed: bool, omit_header: str | None = None) -> Served:
        pki = make_pki(tmp_path / f"pki-{len(servers)}")
        app: Flask = app_module.create_app(flawed, omit_header)
        headers, requests = recording(app)
        server = start_https(app, pki)
        servers.append(server)
        return Served(f"https://127.0.0.1:{server.port}", pki, headers, requests)

    yield start
    for server in servers:
        server.shutdown()


def context(tmp_path: Path, served: Served, **options: str) -> ScanContext:
    return ScanContext(
        root=REPO,
        report_dir=tmp_path / "reports",
        security_dir=REPO / "security",
        tools_bin=TOOLS_BIN,
        offline=True,
        options={
            "base_url": served.base_url,
            "ca_file": str(served.pki.ca_file),
            **FAST,
            **options,
        },
    )


def rules(result: StageResult) -> set[tuple[str, str]]:
    return {
        (f.rule_id, f.location.split(" ", 1)[0] + " " + f.location.split("/", 3)[-1])
        for f in result.findings
    }


# --- target safety -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8443",
        "https://localhost:8443",
        "https://10.0.0.1:8443",
        "https://127.0.0.2:8443",
        "https://[::1]:8443",
        "https://127.0.0.1.nip.io:8443",
        "https://127.0.0.1@example.org:8443",
        # userinfo must be refused; two parts, so no credential-shaped URL is committed
        "https://user:" + "pw@127.0.0.1:8443",
        "https://127.0.0.1:8443/?next=https://example.org",
        "https://127.0.0.1:notaport",
        "",
    ],
    # Test ids end up in the JUnit results kept with the evidence: no URL with userinfo there.
    ids=lambda url: url.replace("@", " at ") or "empty",
)
def test_only_local_https_targets_are_accepted(url: str) -> None:
    with pytest.raises(target.TargetRefused):
        target.check_target(url)


def test_local_target_is_normalised() -> None:
    assert target.check_target("https://127.0.0.1:8443/api/") == "https://127.0.0.1:8443/api"


def test_refused_target_fails_the_stage_without_running_anything(tmp_path: Path) -> None:
    ctx = ScanContext(
        REPO, tmp_path, REPO / "security", TOOLS_BIN, True, {"base_url": "https://example.org"}
    )
    result = run_stage("dast", ctx)
    assert not result.ran
    assert "127.0.0.1" in (result.error or "")
    assert not (tmp_path / "dast").exists()


def test_missing_ca_file_fails_the_stage(tmp_path: Path) -> None:
    options = {"base_url": "https://127.0.0.1:8443", "ca_file": str(tmp_path / "none.pem")}
    result = run_stage(
        "dast", ScanContext(REPO, tmp_path, REPO / "security", TOOLS_BIN, True, options)
    )
    assert not result.ran
    assert "TLS is always verified" in (result.error or "")


def test_auth_header_comes_from_one_option_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    header_file = tmp_path / "auth-header"
    header_file.write_text("Authorization: Bearer from-file\n", encoding="utf-8")
    options = {"base_url": "https://127.0.0.1:8443", "ca_file": str(pki.ca_file)}
    ctx = ScanContext(REPO, tmp_path, REPO / "security", TOOLS_BIN, True, options)
    both = {**options, "auth_header_file": str(header_file), "auth_header": "X-Other: 1"}
    with pytest.raises(target.TargetRefused, match="not both"):
        target.target_from(ScanContext(REPO, tmp_path, REPO / "security", TOOLS_BIN, True, both))
    missing = {**options, "auth_header_file": str(tmp_path / "none")}
    with pytest.raises(target.TargetRefused, match="cannot read auth_header_file"):
        target.target_from(ScanContext(REPO, tmp_path, REPO / "security", TOOLS_BIN, True, missing))
    from_file = {**options, "auth_header_file": str(header_file)}
    parsed = target.target_from(
        ScanContext(REPO, tmp_path, REPO / "security", TOOLS_BIN, True, from_file)
    )
    assert parsed.auth == ("Authorization", "Bearer from-file")
    assert target.target_from(ctx).auth is None


# --- real scans --------------------------------------------------------------


def test_flawed_app_is_caught(
    tmp_path: Path, serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZAP_API_URL", raising=False)
    served = serve(True)
    header_file = tmp_path / "auth-header"  # as `secgate --dast-target-command` passes it
    header_file.write_text("Authorization: Bearer test-token-1\n", encoding="utf-8")
    result = run_stage("dast", context(tmp_path, served, auth_header_file=str(header_file)))
    assert result.ran, result.error
    found = rules(result)
    assert ("schemathesis/ST101", "GET api/ratio") in found  # 500 on divisor=0
    assert ("schemathesis/ST108", "GET api/status") in found  # response violates its schema
    server_error = next(f for f in result.findings if f.rule_id == "schemathesis/ST101")
    assert server_error.location == f"GET {served.base_url}/api/ratio"
    assert "ZAP: not run (ZAP_API_URL unset)" in result.notes
    assert result.metadata["zap"] == "ZAP: not run (ZAP_API_URL unset)"
    # A field the closed response schema does not name is a finding (a leaked field).
    profile = ("schemathesis/ST108", "GET api/profile")
    leaked = [f for f in result.findings if profile in rules_of(f)]
    assert leaked
    assert any("password_hash" in f.message for f in leaked)
    # Passive checks on the responses schemathesis saw: a missing header, a leaking error body.
    assert ("passive/missing-nosniff", "GET api/status") in found
    assert ("passive/error-leaks-internals", "GET api/ratio") in found
    # The probe: an undocumented route that answers.
    assert ("probe/undocumented-route", "GET admin") in found
    # The auth header reached the server, and its value is in no file we wrote.
    assert any(h.get("Authorization") == "Bearer test-token-1" for h in served.seen_headers)
    reports = [path for path in (tmp_path / "reports").rglob("*") if path.is_file()]
    assert any(path.name == "wapiti.log" for path in reports)
    assert not [path for path in reports if b"test-token-1" in path.read_bytes()]
    assert any("Cross Site Scripting" in f.rule_id for f in result.findings)
    assert "3 of 3 operations reached" in result.metadata["schemathesis"]
    assert "authenticated: yes" in result.metadata["schemathesis"]
    assert "3 of 3 operations reached" in result.metadata["wapiti"]


def test_two_different_server_errors_on_one_operation_are_two_findings(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    """divisor=0 crashes (Flask's 500 page), divisor=1000 fails with another 500 body.

    schemathesis itself keeps one server error per operation and phase; the
    coverage phase meets 1000 (a boundary), the fuzzing phase 0.
    """
    served = serve(True)
    phases = "examples,coverage,fuzzing"
    result = run_stage("dast", context(tmp_path, served, dast_tools="schemathesis", phases=phases))
    assert result.ran, result.error
    errors = [f for f in result.findings if f.rule_id == "schemathesis/ST101"]
    assert len(errors) == 2
    assert len({f.fingerprint for f in errors}) == 2
    assert {f.location for f in errors} == {f"GET {served.base_url}/api/ratio"}
    assert any("OverflowError" in f.message for f in errors)


def _scenario(label: str, responses: list[tuple[int, str]]) -> str:
    """One ScenarioFinished line of schemathesis' ndjson stream (the shape 4.3x writes)."""
    method, _, path = label.partition(" ")
    interactions = {
        f"case{index}": {
            "request": {"method": method, "uri": f"https://127.0.0.1:1{path}", "headers": {}},
            "response": {
                "status_code": status,
                "headers": {"content-type": ["application/problem+json"]},
                "content": {"$base64": base64.b64encode(body.encode()).decode()},
            },
        }
        for index, (status, body) in enumerate(responses)
    }
    recorder = {"label": label, "cases": {}, "checks": {}, "interactions": interactions}
    return json.dumps({"ScenarioFinished": {"status": "failure", "recorder": recorder}})


def test_the_same_failure_twice_is_one_finding_and_different_ones_are_two() -> None:
    """Fingerprints ignore what varies between runs (ids, times) and keep what differs."""

    def problem(title: str) -> str:
        request_id, now = uuid.uuid4(), dt.datetime.now(dt.UTC).isoformat()
        return json.dumps({"title": title, "status": 500, "request_id": str(request_id), "at": now})

    first = _scenario("GET /api/v1/events", [(500, problem("database down"))])
    again = _scenario("GET /api/v1/events", [(500, problem("database down"))])
    other = _scenario("GET /api/v1/events", [(500, problem("cursor decode failed"))])
    documented = ["GET /api/v1/events"]
    base_url = "https://127.0.0.1:1"
    once = schemathesis.failure_findings(
        schemathesis.read_events([first, again], base_url, documented).failures, base_url
    )
    assert len(once) == 1
    assert "2 case(s)" in once[0].message
    both = schemathesis.failure_findings(
        schemathesis.read_events([first, other], base_url, documented).failures, base_url
    )
    assert len({f.fingerprint for f in both}) == 2
    assert once[0].fingerprint in {f.fingerprint for f in both}


def rules_of(finding: Any) -> set[tuple[str, str]]:
    location = finding.location
    return {(finding.rule_id, location.split(" ", 1)[0] + " " + location.split("/", 3)[-1])}


def test_a_response_missing_a_security_header_fails_dast(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    """The clean twin passes the gate; without HSTS, the same app fails it."""
    policy = load_policy(REPO / "security" / "policy.yml")
    today = dt.date.today()
    clean = run_stage("dast", context(tmp_path / "a", serve(False), dast_tools="schemathesis"))
    assert clean.ran, clean.error
    assert evaluate([clean], policy, [], today).passed
    no_hsts = serve(False, "Strict-Transport-Security")
    result = run_stage("dast", context(tmp_path / "b", no_hsts, dast_tools="schemathesis"))
    verdict = evaluate([result], policy, [], today)
    assert not verdict.passed
    blocking = {f.rule_id for f in verdict.blocking}
    assert blocking == {"passive/missing-hsts"}
    assert all(f.severity >= Severity.MEDIUM for f in verdict.blocking)


def test_wapiti_finds_reflected_xss(tmp_path: Path, serve: Callable[..., Served]) -> None:
    served = serve(True)
    result = run_stage("dast", context(tmp_path, served, dast_tools="wapiti", wapiti_modules="xss"))
    assert result.ran, result.error
    # "Cross Site Scripting" in wapiti 3.0, "Reflected Cross Site Scripting" in 3.2.
    xss = [f for f in result.findings if "Cross Site Scripting" in f.rule_id]
    assert xss
    assert xss[0].owasp == INJECTION


def test_clean_app_passes(tmp_path: Path, serve: Callable[..., Served]) -> None:
    served = serve(False)
    tools = "schemathesis,wapiti,probe"
    result = run_stage("dast", context(tmp_path, served, dast_tools=tools))
    assert result.ran, result.error
    assert result.findings == []
    assert "zap: not run (left out by option dast_tools)" in result.notes
    assert "authenticated: no" in result.metadata["schemathesis"]
    assert result.metadata["probe"].endswith("authenticated: no")
    assert (tmp_path / "reports" / "dast" / "schemathesis-junit.xml").is_file()


def spec_server(document: str, pki: Pki) -> tuple[Any, list[tuple[str, str, str]]]:
    """A server that serves ``document`` at /openapi.json and answers every other request
    with a well-behaved empty JSON object, recording each request's method, path and token."""
    app = Flask("recording")
    _, requests = recording(app)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.route("/", defaults={"path": ""}, methods=methods)
    @app.route("/<path:path>", methods=methods)
    def answer(path: str) -> Any:
        if path == "openapi.json":
            return app.response_class(document, mimetype="application/json")
        return app.response_class("{}", mimetype="application/json")

    return start_https(app, pki), requests


def test_wapiti_reaches_every_operation_of_our_api_with_the_token(tmp_path: Path) -> None:
    """wapiti gets the repository's openapi.json: every operation is requested, with the token."""
    document = (REPO / "openapi.json").read_text(encoding="utf-8")
    pki = make_pki(tmp_path / "pki")
    server, seen = spec_server(document, pki)
    header_file = tmp_path / "auth-header"
    header_file.write_text("Authorization: Bearer wapiti-token-7\n", encoding="utf-8")
    base_url = f"https://127.0.0.1:{server.port}"
    options = {
        "base_url": base_url,
        "ca_file": str(pki.ca_file),
        "auth_header_file": str(header_file),
        "dast_tools": "wapiti",
        "wapiti_modules": "xss",
    }
    reports = tmp_path / "reports"
    ctx = ScanContext(REPO, reports, REPO / "security", TOOLS_BIN, True, options)
    try:
        result = run_stage("dast", ctx)
    finally:
        server.shutdown()
    assert result.ran, result.error
    operations = client.operations(json.loads(document))
    assert len(operations) >= 12
    reached = {
        client.operation_of(method, path, operations)
        for method, path, token in seen
        if token == "Bearer wapiti-token-7"
    }
    assert reached >= set(operations), set(operations) - reached
    # One request goes without the token: wapiti pings its out-of-band "internal endpoint"
    # (pointed at the target's root, never at wapiti's public servers) with a bare client.
    assert [r for r in seen if r[2] != "Bearer wapiti-token-7"] in ([], [("GET", "/", "")])
    assert f"{len(operations)} of {len(operations)} operations reached" in result.metadata["wapiti"]
    # wapiti's session and configuration stores (they keep the header) are not in the reports.
    kept = [path for path in reports.rglob("*") if path.is_file()]
    assert {path.name for path in kept} == {"wapiti.json", "wapiti.xml", "wapiti.log"}
    assert not [path for path in kept if b"wapiti-token-7" in path.read_bytes()]


def test_a_scanner_that_reaches_no_operation_is_an_error(tmp_path: Path) -> None:
    """A document wapiti cannot use (no operations) leaves it nothing to cover: not a pass."""
    pki = make_pki(tmp_path / "pki")
    empty = json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}})
    server, _ = spec_server(empty, pki)
    options = {
        "base_url": f"https://127.0.0.1:{server.port}",
        "ca_file": str(pki.ca_file),
        "dast_tools": "wapiti",
        "wapiti_modules": "xss",
    }
    try:
        result = run_stage(
            "dast", ScanContext(REPO, tmp_path / "r", REPO / "security", TOOLS_BIN, True, options)
        )
    finally:
        server.shutdown()
    assert not result.ran
    assert "wapiti ineffective: it reached none of the 0 documented operations" in (
        result.error or ""
    )


def test_certificate_from_another_ca_is_refused(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    served = serve(False)
    other = make_pki(tmp_path / "other-ca")
    result = run_stage(
        "dast", context(tmp_path, served, dast_tools="schemathesis", ca_file=str(other.ca_file))
    )
    assert not result.ran
    assert "schemathesis" in (result.error or "")


def test_broken_scanner_fails_the_stage(tmp_path: Path, serve: Callable[..., Served]) -> None:
    served = serve(False)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "schemathesis"
    fake.write_text("#!/bin/sh\necho 'Traceback: boom' >&2\nexit 2\n", encoding="utf-8")
    fake.chmod(0o755)
    ctx = context(tmp_path, served, dast_tools="schemathesis")
    ctx = ScanContext(ctx.root, ctx.report_dir, ctx.security_dir, fake_bin, True, ctx.options)
    result = run_stage("dast", ctx)
    assert not result.ran
    assert "schemathesis could not run" in (result.error or "")


# --- passive checks, one response at a time -------------------------------------

GOOD_HEADERS = {
    "strict-transport-security": "max-age=31536000",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
    "content-type": "application/problem+json",
}


def answer(status: int = 404, body: bytes = b'{"title": "Not Found"}', **headers: str) -> Any:
    merged = {**GOOD_HEADERS, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return client.Answer("GET", "/x", status, {k: v for k, v in merged.items() if v}, body, True)


@pytest.mark.parametrize(
    ("response", "check", "detail"),
    [
        (answer(strict_transport_security=""), "missing-hsts", "Strict-Transport-Security"),
        (answer(x_content_type_options="sniff"), "missing-nosniff", "X-Content-Type-Options"),
        (answer(content_security_policy="", x_frame_options="DENY"), "missing-csp", "Content-"),
        (answer(content_security_policy="default-src 'none'"), "missing-frame-protection", "CSP"),
        (answer(cache_control="max-age=60"), "cacheable-authenticated", "no-store"),
        (answer(set_cookie="sid=1; Secure; HttpOnly"), "weak-cookie", "sid without samesite"),
        (answer(content_type=""), "missing-content-type", "no Content-Type"),
        (answer(body=b"<html>oops</html>"), "content-type-mismatch", "not JSON"),
        (
            answer(500, b"Traceback (most recent call last):", content_type="text/plain"),
            "error-leaks-internals",
            "traceback",
        ),
        (
            answer(500, b'File "/srv/app/store.py", line 3', content_type="text/plain"),
            "error-leaks-internals",
            "file path",
        ),
        (
            answer(500, b"pymongo.errors.OperationFailure: x", content_type="text/plain"),
            "error-leaks-internals",
            "database",
        ),
        (answer(400, b'{"detail": "KeyError: name"}'), "error-leaks-internals", "exception"),
        (answer(server="gunicorn/23.0.0"), "version-disclosure", "server header"),
    ],
)
def test_passive_checks_flag_one_problem(response: Any, check: str, detail: str) -> None:
    issues = passive.check(response)
    assert [issue.check for issue in issues] == [check]
    assert detail in issues[0].detail


def test_a_well_behaved_response_passes_every_passive_check() -> None:
    assert passive.check(answer()) == []
    assert passive.check(answer(set_cookie="sid=1; Secure; HttpOnly; SameSite=Strict")) == []
    unauthenticated = client.Answer(
        "GET", "/x", 200, {**GOOD_HEADERS, "cache-control": ""}, b"{}", False
    )
    assert passive.check(unauthenticated) == []


def test_trace_goes_to_every_documented_path_once() -> None:
    documented = ["GET /api/v1/events/{event_id}", "PATCH /api/v1/events/{event_id}", "GET /x"]
    assert probe.trace_probes(documented) == [("TRACE", "/api/v1/events/0"), ("TRACE", "/x")]


# --- report parsers -------------------------------------------------------------


def _wapiti_report(version: str, level: int) -> dict[str, Any]:
    """The shape of wapiti's JSON report (wapitiCore/report/jsonreportgenerator.py)."""
    item = {
        "method": "GET",
        "path": "/search",
        "info": "XSS via q",
        "level": level,
        "parameter": "q",
    }
    return {
        "classifications": {
            "Cross Site Scripting": {"desc": "...", "sol": "Escape output.", "ref": {}}
        },
        "vulnerabilities": {"Cross Site Scripting": [item]},
        "anomalies": {"Internal Server Error": []},
        "infos": {"version": version, "target": "https://127.0.0.1:1/"},
    }


@pytest.mark.parametrize(
    ("version", "level", "severity"),
    [
        ("Wapiti 3.0.3", 1, "HIGH"),
        ("Wapiti 3.0.3", 3, "LOW"),
        ("Wapiti 3.2.3", 4, "CRITICAL"),
        ("Wapiti 3.2.3", 1, "LOW"),
    ],
)
def test_wapiti_levels_follow_its_version(version: str, level: int, severity: str) -> None:
    findings = wapiti.parse_wapiti(_wapiti_report(version, level), "https://127.0.0.1:8443")
    assert [f.severity.name for f in findings] == [severity]
    assert findings[0].location == "GET https://127.0.0.1:8443/search"
    assert findings[0].cwe == "CWE-79"
    assert findings[0].help == "Escape output."


def test_zap_alerts_become_findings_and_false_positives_are_dropped() -> None:
    alert = {
        "alert": "Cross Site Scripting (Reflected)",
        "risk": "High",
        "confidence": "Medium",
        "url": "https://127.0.0.1:8443/search?q=x",
        "method": "GET",
        "param": "q",
        "evidence": "<script>",
        "cweid": "79",
        "pluginId": "40012",
        "solution": "Encode output.",
    }
    findings = zap.parse_zap({"alerts": [alert, {**alert, "confidence": "False Positive"}]})
    assert len(findings) == 1
    assert findings[0].rule_id == "zap/40012"
    assert findings[0].severity.name == "HIGH"
    assert findings[0].cwe == "CWE-79"


# --- ZAP, through a stand-in for its HTTP API --------------------------------


class FakeZap(BaseHTTPRequestHandler):
    """Answers the ZAP API calls zap_driver.py makes (zapv2 sends them via ZAP as a proxy).

    A recorded stand-in for a third-party API: no ZAP daemon can be installed on
    this machine. It checks our client code and its wiring (which calls, in which
    order, with which values), not ZAP's scanning (that runs in the CI ZAP job).
    """

    calls: ClassVar[list[tuple[str, dict[str, list[str]], str]]] = []
    target: ClassVar[str] = ""
    ANSWERS: ClassVar[dict[str, Any]] = {
        "/JSON/core/view/version/": {"version": "2.16.1"},
        "/JSON/core/action/newSession/": {"Result": "OK"},
        "/JSON/context/action/newContext/": {"contextId": "1"},
        "/JSON/context/action/includeInContext/": {"Result": "OK"},
        "/JSON/openapi/action/importUrl/": {"importUrl": []},
        "/JSON/replacer/action/addRule/": {"Result": "OK"},
        "/JSON/replacer/action/removeRule/": {"Result": "OK"},
        "/JSON/spider/action/scan/": {"scan": "0"},
        "/JSON/spider/view/status/": {"status": "100"},
        "/JSON/ascan/action/scan/": {"scan": "0"},
        "/JSON/ascan/view/status/": {"status": "100"},
    }

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.calls.append((url.path, parse_qs(url.query), self.headers.get("X-ZAP-API-Key", "")))
        if url.path == "/OTHER/core/other/xmlreport/":
            body, kind = b"<OWASPZAPReport/>", "application/xml"
        elif url.path == "/JSON/core/view/alerts/":
            alert = {
                "alert": "Cross Site Scripting (Reflected)",
                "risk": "High",
                "confidence": "Medium",
                "url": f"{self.target}/search?q=x",
                "method": "GET",
                "param": "q",
                "cweid": "79",
                "pluginId": "40012",
                "solution": "Encode output.",
                "evidence": "<script>",
            }
            body, kind = json.dumps({"alerts": [alert]}).encode(), "application/json"
        else:
            body, kind = json.dumps(self.ANSWERS[url.path]).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def fake_zap() -> Iterator[str]:
    FakeZap.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeZap)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_zap_scan_through_its_api(
    tmp_path: Path, serve: Callable[..., Served], fake_zap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve(False)
    FakeZap.target = served.base_url
    monkeypatch.setenv("ZAP_API_URL", fake_zap)
    monkeypatch.setenv("ZAP_API_KEY", "zap-key-1")
    header_file = tmp_path / "auth-header"
    header_file.write_text("Authorization: Bearer zap-token-3\n", encoding="utf-8")
    options = {"dast_tools": "zap", "zap_required": "true", "auth_header_file": str(header_file)}
    result = run_stage("dast", context(tmp_path, served, **options))
    assert result.ran, result.error
    assert [f.rule_id for f in result.findings] == ["zap/40012"]
    assert result.tool_versions["zap"] == "2.16.1"
    assert "authenticated: yes" in result.metadata["zap"]
    assert (tmp_path / "reports" / "dast" / "zap-report.xml").read_text() == "<OWASPZAPReport/>"
    paths = [path for path, _, _ in FakeZap.calls]
    # The token is in place before ZAP sends anything to the target (the OpenAPI import
    # included), the document is imported before the spider and the active scan, and
    # the rule is removed once the scan is over.
    order = [
        "/JSON/replacer/action/addRule/",
        "/JSON/openapi/action/importUrl/",
        "/JSON/spider/action/scan/",
        "/JSON/ascan/action/scan/",
        "/JSON/replacer/action/removeRule/",
    ]
    assert [paths.index(path) for path in order] == sorted(paths.index(path) for path in order)
    rule = next(query for path, query, _ in FakeZap.calls if path.endswith("addRule/"))
    assert rule["matchType"] == ["REQ_HEADER"]
    assert rule["matchString"] == ["Authorization"]
    assert rule["replacement"] == ["Bearer zap-token-3"]
    assert rule["matchRegex"] == ["false"]
    assert re.fullmatch(rule["url"][0], f"{served.base_url}/api/v1/events")
    assert not re.fullmatch(rule["url"][0], "https://example.org/api/v1/events")
    removed = next(query for path, query, _ in FakeZap.calls if path.endswith("removeRule/"))
    assert removed["description"] == rule["description"]
    imported = next(query for path, query, _ in FakeZap.calls if path.endswith("importUrl/"))
    assert imported["url"] == [f"{served.base_url}/openapi.json"]
    assert imported["contextId"] == ["1"]
    assert {key for _, _, key in FakeZap.calls} == {"zap-key-1"}
    kept = [path for path in (tmp_path / "reports").rglob("*") if path.is_file()]
    assert not [path for path in kept if b"zap-token-3" in path.read_bytes()]


def test_unreachable_zap_is_a_note_or_an_error(
    tmp_path: Path, serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve(False)
    monkeypatch.setenv("ZAP_API_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    optional = run_stage("dast", context(tmp_path / "a", served, dast_tools="zap"))
    assert optional.ran
    assert optional.notes == [
        "schemathesis: not run (left out by option dast_tools)",
        "wapiti: not run (left out by option dast_tools)",
        "probe: not run (left out by option dast_tools)",
        "ZAP: not run (no ZAP daemon at ZAP_API_URL=http://127.0.0.1:9)",
    ]
    required = run_stage(
        "dast", context(tmp_path / "b", served, dast_tools="zap", zap_required="true")
    )
    assert not required.ran
    assert "ZAP: not run (no ZAP daemon" in (required.error or "")
