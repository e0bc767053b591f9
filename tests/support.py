"""Helpers shared by test modules and tests/perf: assertions, test PKI, the real API server."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr
from pymongo import MongoClient, monitoring

from devstack.mongod import RunningMongod
from eventsvc.audit.signing import LocalCheckpointSigner
from eventsvc.domain import RequestContext
from eventsvc.settings import Settings

# The tests' checkpoint key (production signs with Vault transit): a fixed seed,
# so a server started by a test and the test itself agree on the public key.
CHECKPOINT_SEED = bytes(range(32))
CHECKPOINT_SIGNER = LocalCheckpointSigner.from_seed(CHECKPOINT_SEED)
CHECKPOINT_KEYS = CHECKPOINT_SIGNER.public_keys()

# The actor of changes that tests make directly through the stores.
TEST_CONTEXT = RequestContext(actor="token:pytest-fixture")


def problem_of(response: Any) -> dict[str, Any]:
    """The problem+json body of an error response (asserting its media type)."""
    assert response.mimetype == "application/problem+json", response.data
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == response.status_code
    return body


def write_test_pki(directory: Path, *, hostname: str = "localhost") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost.

    Returns (ca_file, cert_file, key_file); the key file is 0600. For tests
    only: the real stack gets its certificates from Vault PKI.
    """
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"eventsvc test CA {directory.name}")]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key_file = directory / "ca.key"
    ca_key_file.touch(mode=0o600)
    ca_key_file.write_bytes(
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@dataclass
class ApiServer:
    """A real ``python -m eventsvc.server`` (gunicorn, HTTPS) on a free port."""

    base_url: str
    ca_file: Path
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    token: str  # every scope; sent by `headers`

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def log_text(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_api_server(
    workdir: Path,
    settings: Settings,
    *,
    username: str,
    password: SecretStr,
    token_pepper: SecretStr,
    audit_key: bytes,
    token: str,
    workers: int = 1,
    client_ca: bool = False,
) -> ApiServer:
    """Start ``python -m eventsvc.server`` (gunicorn, HTTPS with a throwaway CA) on a free port.

    It talks to the MongoDB of ``settings`` with the given SCRAM user and uses
    its rate limits; returns once ``/healthz`` answers. With ``client_ca`` it
    also accepts client certificates signed by its CA (see write_client_cert). Used by the
    ``api_server`` fixture. Call ``stop()``.
    """
    ca_file, cert_file, key_file = write_test_pki(workdir / "pki")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        **coverage_env(),
        "EVENTSVC_PROFILE": "test",
        "EVENTSVC_BIND": f"127.0.0.1:{port}",
        "EVENTSVC_WORKERS": str(workers),
        "EVENTSVC_TLS_CERT_FILE": str(cert_file),
        "EVENTSVC_TLS_KEY_FILE": str(key_file),
        "EVENTSVC_MONGODB_HOSTS": settings.mongodb_hosts,
        "EVENTSVC_MONGODB_REPLICA_SET": settings.mongodb_replica_set or "",
        "EVENTSVC_MONGODB_TLS": "false",
        "EVENTSVC_MONGODB_AUTH_MODE": "scram",
        "EVENTSVC_MONGODB_USERNAME": username,
        "EVENTSVC_MONGODB_PASSWORD": password.get_secret_value(),
        "EVENTSVC_TOKEN_PEPPER": token_pepper.get_secret_value(),
        "EVENTSVC_AUDIT_HMAC_KEY": audit_key.decode(),
        "EVENTSVC_AUDIT_CHECKPOINT_SEED": base64.urlsafe_b64encode(CHECKPOINT_SEED).decode(),
        "EVENTSVC_RATE_LIMIT_PER_ADDRESS": settings.rate_limit_per_address,
        "EVENTSVC_RATE_LIMIT_PER_TOKEN": settings.rate_limit_per_token,
    }
    if client_ca:  # optional mutual TLS: client certificates from the same test CA
        env["EVENTSVC_TLS_CLIENT_CA_FILE"] = str(ca_file)
    log_file = workdir / "server.log"
    with log_file.open("wb") as log_handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventsvc.server"],
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    server = ApiServer(f"https://127.0.0.1:{port}", ca_file, port, process, log_file, token)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{server.base_url}/healthz", verify=str(ca_file), timeout=1).ok:
                return server
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"eventsvc server did not start:\n{server.log_text()[-3000:]}")
        time.sleep(0.2)


def coverage_env() -> dict[str, str]:
    """Coverage's variables, for children started with a hand-made environment.

    Under ``make test`` coverage measures subprocesses through
    COVERAGE_PROCESS_CONFIG (pyproject: ``patch = ["subprocess"]``).
    """
    names = ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")
    return {name: os.environ[name] for name in names if name in os.environ}


def write_client_cert(pki_dir: Path, common_name: str) -> Path:
    """A client certificate (cert + key, 0600 PEM) signed by ``write_test_pki``'s CA."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eventsvc-clients"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem_file = pki_dir / f"client-{common_name}.pem"
    pem_file.touch(mode=0o600)
    pem_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem_file


APP_DATABASE = "eventsvc"  # the session mongod's app database (tests/conftest.py)
APP_USERNAME = "eventsvc-test"  # its least-privilege app user (role eventsvcApp)
GENEROUS_RATE_LIMIT = "100000/minute"  # test suites and benchmarks: 429s would distort them


def scram_test_settings(mongod: RunningMongod, database: str) -> Settings:
    """Settings for an app on the devstack's plain-TCP mongod with a SCRAM user.

    Rate limits are generous: tests and benchmarks send hundreds of requests a
    minute from 127.0.0.1 (tests/api/test_abuse_protection.py sets tight ones).
    """
    return Settings(
        profile="test",
        mongodb_hosts=mongod.hosts,
        mongodb_replica_set=mongod.replica_set,
        mongodb_database=database,
        mongodb_auth_mode="scram",
        mongodb_tls=False,
        rate_limit_per_address=GENEROUS_RATE_LIMIT,
        rate_limit_per_token=GENEROUS_RATE_LIMIT,
    )


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]  # after "pid (comm)", which may hold spaces
    return state != "Z"


class CommandLog(monitoring.CommandListener):
    """The commands a client sends, as (command name, collection), in order, and as sent."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, object]] = []
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, event.command.get(event.command_name)))
        self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on(self, collection: str) -> list[str]:
        """The names of the commands sent to ``collection``."""
        return [name for name, target in self.commands if target == collection]

    def clear(self) -> None:
        self.commands.clear()
        self.sent.clear()

    def find_limits(self, collection: str) -> list[object]:
        """The ``limit`` of every find sent to ``collection``."""
        return [command.get("limit") for command in self.sent if command.get("find") == collection]


def app_user_client(
    settings: Settings, password: SecretStr, listener: monitoring.CommandListener
) -> MongoClient[dict[str, Any]]:
    """A second client of the session's app user whose commands ``listener`` sees.

    The same options that matter as :func:`eventsvc.store.connect` (majority
    reads and writes, SCRAM), plus the listener, which ``connect`` has no
    place for. The caller closes it.
    """
    return MongoClient(
        settings.mongodb_hosts.split(","),
        replicaset=settings.mongodb_replica_set,
        username=APP_USERNAME,
        password=password.get_secret_value(),
        authSource=APP_DATABASE,
        authMechanism="SCRAM-SHA-256",
        readConcernLevel="majority",
        w="majority",
        journal=True,
        event_listeners=[listener],
    )


def split_http_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """A raw HTTP/1.1 response as (status line, headers as sent, body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("ascii").split("\r\n")
    return status_line, dict(line.split(": ", 1) for line in lines), body
