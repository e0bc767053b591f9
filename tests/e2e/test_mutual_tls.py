"""Optional mutual TLS: the verified client certificate becomes part of the actor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from devstack.mongod import RunningMongod
from support import ApiServer, write_client_cert

APP_DATABASE = "eventsvc"


@pytest.fixture(scope="module")
def mtls_server(start_test_api: Callable[..., ApiServer]) -> ApiServer:
    """A second server that also accepts client certificates from its test CA."""
    return start_test_api(client_ca=True)


def audit_actor_of(mongod: RunningMongod, event_id: str) -> str:
    with mongod.admin_client() as admin:
        record = admin[APP_DATABASE]["audit"].find_one(
            {"action": "event.create", "target": event_id}
        )
    assert record is not None
    actor: str = record["actor"]
    return actor


def test_client_certificate_subject_is_recorded_as_actor(
    mtls_server: ApiServer, mongod: RunningMongod
) -> None:
    client_pem = write_client_cert(mtls_server.ca_file.parent, "ci-runner")
    created = requests.post(
        f"{mtls_server.base_url}/api/v1/events",
        json={"name": "with a certificate"},
        headers=mtls_server.headers,
        verify=str(mtls_server.ca_file),
        cert=str(client_pem),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    actor = audit_actor_of(mongod, created.json()["id"])
    assert actor.startswith("token:")
    assert actor.endswith(" cert:CN=ci-runner,OU=eventsvc-clients")


def test_without_a_certificate_the_actor_is_the_token_only(
    mtls_server: ApiServer, mongod: RunningMongod
) -> None:
    created = requests.post(
        f"{mtls_server.base_url}/api/v1/events",
        json={"name": "without a certificate"},
        headers=mtls_server.headers,
        verify=str(mtls_server.ca_file),
        timeout=10,
    )
    assert created.status_code == 201
    assert " cert:" not in audit_actor_of(mongod, created.json()["id"])


def test_a_forged_subject_header_is_ignored(mtls_server: ApiServer, mongod: RunningMongod) -> None:
    created = requests.post(
        f"{mtls_server.base_url}/api/v1/events",
        json={"name": "forged"},
        headers={**mtls_server.headers, "eventsvc.client_cert_subject": "CN=admin"},
        verify=str(mtls_server.ca_file),
        timeout=10,
    )
    assert created.status_code == 201
    assert "CN=admin" not in audit_actor_of(mongod, created.json()["id"])


def test_a_certificate_from_another_ca_is_refused(mtls_server: ApiServer, tmp_path: Path) -> None:
    from support import write_test_pki

    write_test_pki(tmp_path / "other")
    foreign = write_client_cert(tmp_path / "other", "intruder")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            f"{mtls_server.base_url}/healthz",
            verify=str(mtls_server.ca_file),
            cert=str(foreign),
            timeout=10,
        )
