"""End to end: mongod's TLS from our PKI, the app's X.509 user from a Vault-issued client cert.

bao (dev-tls) → bootstrap → mongod member cert (OU=eventsvc-mongod) → mongod with
requireTLS + CRL → AppRole login → client cert (OU=eventsvc-clients) → X.509 user
named by its subject → insert. Then shutdown revokes the cert; once the CRL is
handed to mongod, a new connection with that cert is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo.database import Database
from pymongo.errors import PyMongoError
from schema_attacks import ATTACK_PARAMS, Attack, assert_refused
from vault_support import Stack, start_stack

from devstack.database import migrate
from devstack.mongod import MongodTLS, RunningMongod, start_mongod
from devstack.openbao import issue_mongod_server_cert, write_crl
from eventsvc.dbschema import check_schema
from eventsvc.vault.issued import MongoX509Credential
from eventsvc.vault.session import VaultSession


@pytest.fixture(scope="module")
def stack_and_mongod(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, RunningMongod, Path]]:
    workdir = tmp_path_factory.mktemp("vault-mongo")
    stack = start_stack(workdir)
    try:
        member = issue_mongod_server_cert(stack.root, workdir / "mongod-tls")
        assert "OU=eventsvc-mongod" in member.subject
        tls = MongodTLS(
            server_pem_file=member.pem_file, ca_file=member.ca_file, crl_file=member.crl_file
        )
        mongod = start_mongod(workdir / "mongod", tls=tls)
        try:
            yield stack, mongod, member.crl_file
        finally:
            mongod.stop()
    finally:
        stack.bao.stop()


def x509_client(
    mongod: RunningMongod, credential: MongoX509Credential, timeout_ms: int = 3000
) -> pymongo.MongoClient[Any]:
    return pymongo.MongoClient(
        mongod.host,
        mongod.port,
        replicaSet=mongod.replica_set,
        tls=True,
        tlsCAFile=str(credential.ca_file),
        tlsCertificateKeyFile=str(credential.cert_key_file),
        authMechanism="MONGODB-X509",
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )


def test_vault_issued_client_cert_logs_in_to_mongod_and_is_revoked_at_shutdown(
    stack_and_mongod: tuple[Stack, RunningMongod, Path], tmp_path: Path
) -> None:
    stack, mongod, crl_file = stack_and_mongod
    session = VaultSession.open(stack.config(tmp_path))
    credential = session.issue_mongo_credential()
    assert isinstance(credential, MongoX509Credential)
    mongod.create_app_user_x509(credential.subject)
    with x509_client(mongod, credential) as client:
        client.eventsvc.events.insert_one({"name": "issued by vault"})
        assert client.eventsvc.events.count_documents({"name": "issued by vault"}) == 1
        with pytest.raises(PyMongoError):
            client.other.events.insert_one({})  # an app user, not __system
    # Keep a copy: shutdown removes the runtime dir, but a stolen copy must stop working too.
    stolen = tmp_path / "stolen.pem"
    stolen.write_bytes(credential.cert_key_file.read_bytes())
    stolen.chmod(0o600)
    stolen_ca = tmp_path / "ca.pem"
    stolen_ca.write_bytes(credential.ca_file.read_bytes())
    session.shutdown()
    write_crl(stack.root, crl_file)
    mongod.rotate_certificates()
    replay = MongoX509Credential(
        cert_key_file=stolen,
        ca_file=stolen_ca,
        subject=credential.subject,
        serial_number=credential.serial_number,
        expires_at=credential.expires_at,
    )
    revoked_before = mongod.logpath.read_text().count("certificate revoked")
    with x509_client(mongod, replay, timeout_ms=1000) as client, pytest.raises(PyMongoError):
        client.eventsvc.events.count_documents({})
    assert mongod.logpath.read_text().count("certificate revoked") > revoked_before


@pytest.fixture(scope="module")
def app_x509_database(
    stack_and_mongod: tuple[Stack, RunningMongod, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Database[dict[str, Any]]]:
    """The migrated database through the app's real credential: a cert from its PKI role."""
    stack, mongod, _ = stack_and_mongod
    migrate(mongod, "eventsvc")  # as the dev stack does: the migration identity
    session = VaultSession.open(stack.config(tmp_path_factory.mktemp("x509-attacker")))
    try:
        credential = session.issue_mongo_credential()
        assert isinstance(credential, MongoX509Credential)
        with mongod.admin_client() as admin:  # the first test may have created the user
            known = admin["$external"].command("usersInfo", credential.subject)["users"]
        if not known:
            mongod.create_app_user_x509(credential.subject)
        with x509_client(mongod, credential) as client:
            yield client["eventsvc"]
    finally:
        session.shutdown()


def test_the_x509_attacker_is_the_app(app_x509_database: Database[dict[str, Any]]) -> None:
    """Positive control: the certificate logs in as the app and may check the schema."""
    status = app_x509_database.client.admin.command("connectionStatus")["authInfo"]
    assert status["authenticatedUserRoles"] == [{"role": "eventsvcApp", "db": "eventsvc"}]
    check_schema(app_x509_database)


@pytest.mark.parametrize("attack", ATTACK_PARAMS)
def test_app_certificate_cannot_change_metadata_or_audit_records(
    app_x509_database: Database[dict[str, Any]], attack: Attack
) -> None:
    assert_refused(app_x509_database, attack)
