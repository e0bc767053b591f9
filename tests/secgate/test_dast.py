"""DAST stage against real HTTPS servers on 127.0.0.1 (throwaway CA), real scanners."""

from __future__ import annotations

import datetime as dt
import importlib.util
import ipaddress
import json
import ssl
import threading
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
from werkzeug.serving import make_server

from secgate.model import ScanContext, StageResult
from secgate.pipeline import run_stage
from secgate.stages.dast import target, wapiti, zap
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


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[bool], Served]]:
    """Start the fixture app (flawed or clean) over HTTPS on 127.0.0.1, random port."""
    servers: list[Any] = []
    app_module = _load_fixture_app()

    def start(flawed: bool) -> Served:
        pki = make_pki(tmp_path / f"pki-{len(servers)}")
        seen: list[dict[str, str]] = []
        app: Flask = app_module.create_app(flawed)

        @app.before_request
        def record() -> None:
            seen.append(dict(request.headers))

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(pki.server_pem)
        server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Served(f"https://127.0.0.1:{server.port}", pki, seen)

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
    tmp_path: Path, serve: Callable[[bool], Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZAP_API_URL", raising=False)
    served = serve(True)
    header_file = tmp_path / "auth-header"  # as `secgate --dast-target-command` passes it
    header_file.write_text("Authorization: Bearer test-token-1\n", encoding="utf-8")
    result = run_stage("dast", context(tmp_path, served, auth_header_file=str(header_file)))
    found = rules(result)
    assert ("schemathesis/ST101", "GET api/ratio") in found  # 500 on divisor=0
    assert ("schemathesis/ST108", "GET api/status") in found  # response violates its schema
    server_error = next(f for f in result.findings if f.rule_id == "schemathesis/ST101")
    assert server_error.location == f"GET {served.base_url}/api/ratio"
    assert "ZAP: not run (ZAP_API_URL unset)" in result.notes
    assert result.metadata["zap"] == "ZAP: not run (ZAP_API_URL unset)"
    # The auth header reached the server, and its value is in no file we wrote.
    assert any(h.get("Authorization") == "Bearer test-token-1" for h in served.seen_headers)
    reports = [path for path in (tmp_path / "reports").rglob("*") if path.is_file()]
    assert any(path.name == "wapiti.log" for path in reports)
    assert not [path for path in reports if b"test-token-1" in path.read_bytes()]
    assert result.ran, result.error
    assert any("Cross Site Scripting" in f.rule_id for f in result.findings)


def test_wapiti_finds_reflected_xss(tmp_path: Path, serve: Callable[[bool], Served]) -> None:
    served = serve(True)
    result = run_stage("dast", context(tmp_path, served, dast_tools="wapiti", wapiti_modules="xss"))
    assert result.ran, result.error
    # "Cross Site Scripting" in wapiti 3.0, "Reflected Cross Site Scripting" in 3.2.
    xss = [f for f in result.findings if "Cross Site Scripting" in f.rule_id]
    assert xss
    assert xss[0].owasp == INJECTION


def test_clean_app_passes(tmp_path: Path, serve: Callable[[bool], Served]) -> None:
    served = serve(False)
    result = run_stage("dast", context(tmp_path, served, dast_tools="schemathesis,wapiti"))
    assert result.ran, result.error
    assert result.findings == []
    assert "zap: not run (left out by option dast_tools)" in result.notes
    assert (tmp_path / "reports" / "dast" / "schemathesis-junit.xml").is_file()


def test_certificate_from_another_ca_is_refused(
    tmp_path: Path, serve: Callable[[bool], Served]
) -> None:
    served = serve(False)
    other = make_pki(tmp_path / "other-ca")
    result = run_stage(
        "dast", context(tmp_path, served, dast_tools="schemathesis", ca_file=str(other.ca_file))
    )
    assert not result.ran
    assert "schemathesis" in (result.error or "")


def test_broken_scanner_fails_the_stage(tmp_path: Path, serve: Callable[[bool], Served]) -> None:
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

    No ZAP daemon can be installed on this machine; this checks our client code
    and its wiring, not ZAP's scanning (that runs in the CI ZAP job).
    """

    calls: ClassVar[list[tuple[str, dict[str, list[str]], str]]] = []
    target: ClassVar[str] = ""
    ANSWERS: ClassVar[dict[str, Any]] = {
        "/JSON/core/view/version/": {"version": "2.16.1"},
        "/JSON/core/action/newSession/": {"Result": "OK"},
        "/JSON/context/action/newContext/": {"contextId": "1"},
        "/JSON/context/action/includeInContext/": {"Result": "OK"},
        "/JSON/openapi/action/importUrl/": {"importUrl": []},
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
    tmp_path: Path, serve: Callable[[bool], Served], fake_zap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve(False)
    FakeZap.target = served.base_url
    monkeypatch.setenv("ZAP_API_URL", fake_zap)
    monkeypatch.setenv("ZAP_API_KEY", "zap-key-1")
    result = run_stage("dast", context(tmp_path, served, dast_tools="zap", zap_required="true"))
    assert result.ran, result.error
    assert [f.rule_id for f in result.findings] == ["zap/40012"]
    assert result.tool_versions["zap"] == "2.16.1"
    assert (tmp_path / "reports" / "dast" / "zap-report.xml").read_text() == "<OWASPZAPReport/>"
    paths = [path for path, _, _ in FakeZap.calls]
    assert paths.index("/JSON/openapi/action/importUrl/") < paths.index("/JSON/spider/action/scan/")
    assert paths.index("/JSON/spider/action/scan/") < paths.index("/JSON/ascan/action/scan/")
    imported = next(query for path, query, _ in FakeZap.calls if path.endswith("importUrl/"))
    assert imported["url"] == [f"{served.base_url}/openapi.json"]
    assert {key for _, _, key in FakeZap.calls} == {"zap-key-1"}


def test_unreachable_zap_is_a_note_or_an_error(
    tmp_path: Path, serve: Callable[[bool], Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve(False)
    monkeypatch.setenv("ZAP_API_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    optional = run_stage("dast", context(tmp_path / "a", served, dast_tools="zap"))
    assert optional.ran
    assert optional.notes == [
        "schemathesis: not run (left out by option dast_tools)",
        "wapiti: not run (left out by option dast_tools)",
        "ZAP: not run (no ZAP daemon at ZAP_API_URL=http://127.0.0.1:9)",
    ]
    required = run_stage(
        "dast", context(tmp_path / "b", served, dast_tools="zap", zap_required="true")
    )
    assert not required.ran
    assert "ZAP: not run (no ZAP daemon" in (required.error or "")
