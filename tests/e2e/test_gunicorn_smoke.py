"""The real server: gunicorn over a TCP socket, HTTPS only, TLS >= 1.2."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from support import ApiServer


def test_create_and_read_over_verified_https(api_server: ApiServer) -> None:
    # verify= per request: a Session's verify is overridden by REQUESTS_CA_BUNDLE.
    session = requests.Session()
    created = session.post(
        f"{api_server.base_url}/api/v1/events",
        json={"name": "smoke"},
        timeout=10,
        verify=str(api_server.ca_file),
        headers=api_server.headers,
    )
    assert created.status_code == 201
    location = created.headers["Location"]
    fetched = session.get(
        f"{api_server.base_url}{location}",
        timeout=10,
        verify=str(api_server.ca_file),
        headers=api_server.headers,
    )
    assert fetched.json() == created.json()
    assert "max-age=" in fetched.headers["Strict-Transport-Security"]


def test_problem_json_through_gunicorn(api_server: ApiServer) -> None:
    response = requests.post(
        f"{api_server.base_url}/api/v1/events",
        data="nope",
        headers={"Content-Type": "text/plain", **api_server.headers},
        verify=str(api_server.ca_file),
        timeout=10,
    )
    assert response.status_code == 415
    assert response.headers["Content-Type"] == "application/problem+json"
    anonymous = requests.post(  # no token: refused before the body is even looked at
        f"{api_server.base_url}/api/v1/events",
        data="nope",
        headers={"Content-Type": "text/plain"},
        verify=str(api_server.ca_file),
        timeout=10,
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"


def test_plain_http_is_refused(api_server: ApiServer) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{api_server.port}/healthz", timeout=5)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(api_server: ApiServer, version: ssl.TLSVersion) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(api_server.ca_file)
    context.minimum_version = version
    context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", api_server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost").close()


def test_tls_1_2_is_accepted(api_server: ApiServer) -> None:
    context = ssl.create_default_context(cafile=str(api_server.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", api_server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_logs_are_json_with_request_ids_and_no_password(
    api_server: ApiServer, app_password: object
) -> None:
    import json

    requests.get(f"{api_server.base_url}/api/v1/events", verify=str(api_server.ca_file), timeout=10)
    lines = [line for line in api_server.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    access = [record for record in records if record.get("logger") == "eventsvc.access"]
    assert access
    assert all(record["request_id"] for record in access)
    secret = app_password.get_secret_value()  # type: ignore[attr-defined]
    assert secret not in api_server.log_text()
