"""The operator's first admin token, through Vault, reaches the running service.

The operator writes only a digest record to Vault KV; the service imports it
when it starts, and the token then works with tokens:admin. Real OpenBao,
real mongod, real gunicorn.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from devstack.api import pick_api_port, start_api
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from eventsvc.bootstrap import mint_bootstrap_token


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    paths = StackPaths(tmp_path_factory.mktemp("bootstrap-stack") / ".run")
    running = start_stack(paths, api_port=pick_api_port(0))
    try:
        yield running
    finally:
        running.stop()


def test_bootstrap_token_is_imported_at_start_and_works(stack: RunningStack) -> None:
    root = stack.root_client()
    pepper = root.read("kv/data/eventsvc/token-pepper")["data"]["data"]["token_pepper"]
    token, record = mint_bootstrap_token(str(pepper).encode(), owner="first-operator")
    root.write_data(
        "kv/data/eventsvc/bootstrap-token", data={"options": {"cas": 0}, "data": record.to_kv()}
    )
    assert token not in str(root.read("kv/data/eventsvc/bootstrap-token"))

    headers = {"Authorization": f"Bearer {token}"}
    before = requests.get(
        f"{stack.api.url}/api/v1/tokens",
        headers=headers,
        verify=str(stack.paths.ca_file),
        timeout=10,
    )
    assert before.status_code == 401  # not imported until the service starts again

    stack.api.stop()
    stack.api = start_api(stack.paths, root, stack.boot, stack.api_env)
    after = requests.get(
        f"{stack.api.url}/api/v1/tokens",
        headers=headers,
        verify=str(stack.paths.ca_file),
        timeout=10,
    )
    assert after.status_code == 200, after.text
    owners = {item["owner"]: item for item in after.json()["items"]}
    assert owners["first-operator"]["created_by"] == "vault-bootstrap"
    assert token not in stack.paths.api_log.read_text()
