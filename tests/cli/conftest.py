"""Real servers for the CLI tests: HTTPS on 127.0.0.1 with a throwaway CA.

The CLI runs in-process with click's CliRunner, but every happy path goes
over a real socket and a real TLS handshake to a werkzeug server in a thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from werkzeug.serving import BaseWSGIServer, make_server

from cli.cli_fake_api import FakeState, create_fake_app
from cli.cli_support import Issued, Pki, RunningServer, server_context
from eventsvc.cli import cli

# --- a throwaway PKI -----------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eventsvc-cli-tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _make_ca(directory: Path, label: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} CA"))
        .issuer_name(_name(f"{label} CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / f"{label}-ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(
    directory: Path,
    label: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> Issued:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(name) for name in names]),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path = directory / f"{label}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert=cert_path, key=_write_key(key, directory / f"{label}-key.pem"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = _make_ca(directory, "test")
    other = _make_ca(directory, "other")
    return Pki(
        ca=directory / "test-ca.pem",
        server=_issue(directory, "server", ca, server=True),
        client=_issue(directory, "client", ca, server=False),
        other_ca=directory / "other-ca.pem",
        other_server=_issue(directory, "other-server", other, server=True),
        wrong_name=_issue(directory, "wrong-name", ca, server=True, names=("elsewhere.test",)),
    )


# --- servers -------------------------------------------------------------------------------


@pytest.fixture
def start_server() -> Iterator[Callable[..., RunningServer]]:
    """Start fake-API servers on 127.0.0.1 (random port) in threads; stop them after the test."""
    servers: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(context: ssl.SSLContext | None = None, app: Any = None) -> RunningServer:
        state = FakeState()
        wsgi_app = app if app is not None else create_fake_app(state)
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, ssl_context=context)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        scheme = "https" if context is not None else "http"
        return RunningServer(url=f"{scheme}://127.0.0.1:{server.server_port}", state=state)

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def api(start_server: Callable[..., RunningServer], pki: Pki) -> RunningServer:
    """The fake API over HTTPS with a certificate from the test CA."""
    return start_server(server_context(pki.server))


# --- running the CLI -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EVENTSVC_* from the developer's shell, and a HOME without a config file."""
    for name in list(os.environ):
        if name.startswith("EVENTSVC_") or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def run() -> Callable[..., Result]:
    """Run ``eventsvc ARGS`` in-process with extra environment; never swallow exceptions."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, list(args), env=env, catch_exceptions=True)

    return invoke


@pytest.fixture
def client_env(api: RunningServer, pki: Pki) -> dict[str, str]:
    """Environment pointing the CLI at ``api`` and trusting the test CA."""
    return {"EVENTSVC_URL": api.url, "EVENTSVC_CA_FILE": str(pki.ca)}
