"""Certificate rotation and revocation while the service serves requests.

The whole stack runs with 20-second certificates (a copy of vault/ with
shorter PKI role TTLs), so the service's lease keeper re-issues both its
MongoDB client certificate and its HTTPS certificate every ~13 s and asks
gunicorn for a graceful reload each time. A background thread keeps sending
requests over verified HTTPS and records every failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
import pytest
import requests
import yaml
from cryptography import x509
from pymongo.errors import PyMongoError

from devstack.api import pick_api_port
from devstack.openbao import write_crl
from devstack.paths import BOOTSTRAP_FILE, StackPaths
from devstack.stack import RunningStack, start_stack
from eventsvc.files import write_private_file

CERTIFICATE_TTL = "20s"
SHORT_LIVED_ROLES = ("eventsvc-mongo-client", "eventsvc-api-server")
ROTATION_TIMEOUT_S = 45.0


def short_ttl_definition(directory: Path) -> Path:
    """A copy of vault/ whose app certificate roles issue 20-second certificates."""
    vault_dir = directory / "vault"
    shutil.copytree(BOOTSTRAP_FILE.parent, vault_dir)
    definition = vault_dir / BOOTSTRAP_FILE.name
    content = yaml.safe_load(definition.read_text(encoding="utf-8"))
    for role in SHORT_LIVED_ROLES:
        content["pki"]["roles"][role]["ttl"] = CERTIFICATE_TTL
    definition.write_text(yaml.safe_dump(content), encoding="utf-8")
    return definition


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("rotation")
    running = start_stack(
        StackPaths(workdir / ".run"),
        api_port=pick_api_port(0),
        api_env={
            "EVENTSVC_WORKERS": "2",
            # The load below is one client on one address: not what the limits are for.
            "EVENTSVC_RATE_LIMIT_PER_ADDRESS": "100000/minute",
            "EVENTSVC_RATE_LIMIT_PER_TOKEN": "100000/minute",
        },
        definition=short_ttl_definition(workdir),
    )
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Load:
    """Requests in a loop, each on a new verified HTTPS connection; failures recorded."""

    url: str
    ca_file: str
    token: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        count = 0
        while not self._stop.is_set():
            count += 1
            try:
                if count % 5 == 0:
                    response = requests.post(
                        f"{self.url}/api/v1/events",
                        json={"name": f"load {count}"},
                        headers=headers,
                        verify=self.ca_file,
                        timeout=15,
                    )
                else:
                    response = requests.get(
                        f"{self.url}/api/v1/events?limit=5",
                        headers=headers,
                        verify=self.ca_file,
                        timeout=15,
                    )
            except requests.RequestException as exc:
                self.failures.append(f"{time.strftime('%X')} {type(exc).__name__}: {exc}")
            else:
                if response.status_code in (200, 201):
                    self.ok += 1
                else:
                    self.failures.append(f"{time.strftime('%X')} HTTP {response.status_code}")
            time.sleep(0.05)


def load_on(stack: RunningStack) -> Load:
    with stack.paths.cli_config.open("rb") as handle:
        token = tomllib.load(handle)["token"]
    return Load(stack.api.url, str(stack.paths.ca_file), token)


def served_certificate_serial(stack: RunningStack) -> int:
    context = ssl.create_default_context(cafile=str(stack.paths.ca_file))
    with (
        socket.create_connection(("127.0.0.1", stack.api.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def mongo_client_pem(stack: RunningStack) -> Path:
    (directory,) = stack.paths.api_runtime_dir.glob("eventsvc-vault-*")
    return directory / "mongo-client.pem"


def mongo_client_serial(stack: RunningStack) -> int:
    return x509.load_pem_x509_certificate(mongo_client_pem(stack).read_bytes()).serial_number


def worker_pids(stack: RunningStack) -> set[int]:
    """The master's children except the lease keeper process (which lives across reloads)."""
    master = stack.api.process.pid
    children = {
        int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()
    }
    keeper = re.search(r"lease keeper runs in process (\d+)", stack.api.log_file.read_text())
    assert keeper is not None
    return children - {int(keeper.group(1))}


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


def reloads(stack: RunningStack) -> int:
    return stack.api.log_file.read_text(encoding="utf-8").count("reloading the workers")


def test_both_certificates_rotate_under_load_without_a_failed_request(
    stack: RunningStack,
) -> None:
    master = stack.api.process.pid
    first_server_serial = served_certificate_serial(stack)
    first_mongo_serial = mongo_client_serial(stack)
    first_workers = worker_pids(stack)
    with load_on(stack) as load:
        wait_for(
            lambda: (
                served_certificate_serial(stack) != first_server_serial
                and mongo_client_serial(stack) != first_mongo_serial
            ),
            ROTATION_TIMEOUT_S,
            "new HTTPS and MongoDB certificates",
        )
        wait_for(lambda: not first_workers & worker_pids(stack), 30, "the old workers to exit")
        time.sleep(2)  # keep the load on the new workers for a moment
    assert load.failures == []
    assert load.ok > 50
    assert reloads(stack) >= 2
    assert stack.api.process.pid == master
    assert stack.api.is_running


def test_revoked_client_certificate_is_refused_then_replaced_on_demand(
    stack: RunningStack, tmp_path: Path
) -> None:
    """Revocation, then a reload (as any re-issue would cause): the server survives.

    The new workers are refused by MongoDB; they serve 503 and ask the lease
    keeper for a new certificate, which arrives well before the scheduled one.
    """
    assert stack.mongod.tls is not None
    assert stack.mongod.tls.crl_file is not None
    master = stack.api.process.pid
    previous = mongo_client_serial(stack)
    wait_for(lambda: mongo_client_serial(stack) != previous, ROTATION_TIMEOUT_S, "a fresh cert")
    revoked_copy = tmp_path / "revoked-client.pem"
    write_private_file(revoked_copy, mongo_client_pem(stack).read_text(encoding="ascii"))
    revoked_serial = x509.load_pem_x509_certificate(revoked_copy.read_bytes()).serial_number
    root = stack.root_client()
    root.write_data("pki_int/revoke", data={"serial_number": _vault_serial(revoked_serial)})
    write_crl(root, stack.mongod.tls.crl_file)
    stack.mongod.rotate_certificates()
    with pytest.raises(PyMongoError):
        _x509_ping(stack, revoked_copy)

    os.kill(master, signal.SIGHUP)
    wait_for(
        lambda: mongo_client_serial(stack) != revoked_serial, 30, "a new MongoDB client certificate"
    )
    wait_for(
        lambda: "asked for by a worker" in stack.api.log_file.read_text(encoding="utf-8"),
        5,
        "the on-demand re-issue in the log",
    )
    workers_that_saw_the_revoked_cert = worker_pids(stack)
    wait_for(
        lambda: not workers_that_saw_the_revoked_cert & worker_pids(stack),
        30,
        "the workers to be replaced",
    )
    fresh_copy = tmp_path / "fresh-client.pem"
    write_private_file(fresh_copy, mongo_client_pem(stack).read_text(encoding="ascii"))
    _x509_ping(stack, fresh_copy)
    with load_on(stack) as load:
        wait_for(lambda: load.ok >= 10 or bool(load.failures), 30, "ten requests served")
    assert load.failures == []
    assert stack.api.process.pid == master


def _vault_serial(serial: int) -> str:
    hex_serial = format(serial, "x")
    hex_serial = hex_serial.zfill(len(hex_serial) + len(hex_serial) % 2)
    return ":".join(hex_serial[i : i + 2] for i in range(0, len(hex_serial), 2))


def _x509_ping(stack: RunningStack, pem_file: Path) -> None:
    assert stack.mongod.tls is not None
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        stack.mongod.host,
        stack.mongod.port,
        directConnection=True,
        tls=True,
        tlsCAFile=str(stack.mongod.tls.ca_file),
        tlsCertificateKeyFile=str(pem_file),
        authMechanism="MONGODB-X509",
        authSource="$external",
        serverSelectionTimeoutMS=3000,
    )
    with client:
        client.admin.command("ping")
        client["eventsvc"]["events"].find_one()


def _newest_client_certificate_serial(root: Any) -> str:
    """The serial of the MongoDB client certificate OpenBao issued last."""
    newest: tuple[Any, str] | None = None
    for serial in root.list("pki_int/certs")["data"]["keys"]:
        pem = root.read(f"pki_int/cert/{serial}")["data"]["certificate"]
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if names and names[0].value == "eventsvc":
            issued = (certificate.not_valid_before_utc, serial)
            newest = issued if newest is None or issued > newest else newest
    assert newest is not None, "OpenBao issued no MongoDB client certificate"
    return newest[1]


def test_shutdown_revokes_the_service_token_and_certificates(stack: RunningStack) -> None:
    """Last in the module: stop the API alone and look at what it left in OpenBao."""
    root = stack.root_client()
    runtime = mongo_client_pem(stack).parent
    accessors = set(root.list("auth/token/accessors")["data"]["keys"])
    assert stack.api.stop() == 0
    # The keeper re-issues every few seconds here, so the certificate to
    # check is the newest one issued, found after the stop, not before it.
    serial = _newest_client_certificate_serial(root)
    assert root.read(f"pki_int/cert/{serial}")["data"]["revocation_time"] > 0
    assert len(set(root.list("auth/token/accessors")["data"]["keys"])) < len(accessors)
    assert not runtime.exists()
    assert not any(os.scandir(stack.paths.api_runtime_dir))
