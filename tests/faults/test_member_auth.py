"""The HA replica set's members authenticate with X.509 member certificates, only them.

The least-privileged real credential an attacker could hold is the app's own
MongoDB client certificate (role eventsvc-mongo-client, OU eventsvc-clients):
it must log in as the app user, never as a cluster member (``__system``), so it
can neither read the replication log nor run replica-set commands. A
certificate from another CA is refused at the TLS handshake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo.errors import OperationFailure, PyMongoError

from devstack.ha import RunningHaStack
from eventsvc.files import write_private_file
from support import write_test_pki

UNAUTHORIZED = 13


def _x509_client(stack: RunningHaStack, pem_file: Path) -> pymongo.MongoClient[dict[str, Any]]:
    tls = stack.replica_set.tls
    assert tls is not None
    return pymongo.MongoClient(
        stack.replica_set.seeds,
        replicaSet=stack.replica_set.replica_set,
        tls=True,
        tlsCAFile=str(tls.ca_file),
        tlsCertificateKeyFile=str(pem_file),
        authMechanism="MONGODB-X509",
        authSource="$external",
        serverSelectionTimeoutMS=5000,
    )


def _app_client_certificate(stack: RunningHaStack, directory: Path) -> Path:
    issued = stack.root_client().write_data(
        "pki_int/issue/eventsvc-mongo-client", data={"common_name": "eventsvc", "ttl": "10m"}
    )["data"]
    pem_file = directory / "app-client.pem"
    write_private_file(pem_file, f"{issued['certificate']}\n{issued['private_key']}\n")
    return pem_file


def test_members_authenticate_with_x509_not_a_keyfile(healthy: RunningHaStack) -> None:
    with healthy.replica_set.admin_client() as admin:
        for member in healthy.replica_set.members:
            with pymongo.MongoClient(
                member.host, directConnection=True, **_admin_options(healthy)
            ) as direct:
                options = direct.admin.command("getCmdLineOpts")["parsed"]
                assert options["security"]["clusterAuthMode"] == "x509"
                assert "keyFile" not in options["security"]
                # A transaction orphaned by a crashed instance is aborted after 10 s, not 60.
                assert options["setParameter"]["transactionLifetimeLimitSeconds"] == "10"
        members = admin.admin.command("replSetGetStatus")["members"]
    assert len(members) == 3


def _admin_options(stack: RunningHaStack) -> dict[str, Any]:
    tls = stack.replica_set.tls
    assert tls is not None
    return {
        "tls": True,
        "tlsCAFile": str(tls.ca_file),
        "username": stack.replica_set.root_username,
        "password": stack.replica_set._root_password.reveal(),
        "authSource": "admin",
        "serverSelectionTimeoutMS": 5000,
    }


def test_the_apps_client_certificate_is_not_a_member(
    healthy: RunningHaStack, tmp_path: Path
) -> None:
    pem_file = _app_client_certificate(healthy, tmp_path)
    with _x509_client(healthy, pem_file) as client:
        client["eventsvc"]["events"].find_one()  # it is the app user...
        with pytest.raises(OperationFailure) as status:
            client.admin.command("replSetGetStatus")
        assert status.value.code == UNAUTHORIZED
        with pytest.raises(OperationFailure) as oplog:
            client["local"]["oplog.rs"].find_one()
        assert oplog.value.code == UNAUTHORIZED  # ...never __system


def test_a_certificate_from_another_ca_is_refused(healthy: RunningHaStack, tmp_path: Path) -> None:
    _, cert_file, key_file = write_test_pki(tmp_path / "other-ca")
    pem_file = tmp_path / "other.pem"
    write_private_file(pem_file, cert_file.read_text() + key_file.read_text())
    with _x509_client(healthy, pem_file) as client, pytest.raises(PyMongoError):
        client.admin.command("ping")
