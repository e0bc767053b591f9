"""README's quick start shows what ``make run`` prints: the banner, rendered from the same state."""

from __future__ import annotations

import pytest

from devstack.__main__ import banner
from devstack.paths import REPO_ROOT


def readme_example() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split("It prints what it\nstarted, for example:\n\n```\n", 1)[1]
    return after.split("\n```\n", 1)[0]


def test_the_readme_shows_the_banner_of_a_stack_behind_the_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    run = REPO_ROOT / ".run"
    state = {
        "status": "ready",
        "api_url": "https://127.0.0.1:8443",
        "docs_url": "https://127.0.0.1:8443/docs",
        "gateway_url": "https://127.0.0.1:8443",
        "backend_urls": ["https://127.0.0.1:41829"],
        "ca_file": str(run / "ca.pem"),
        "cli_config": str(run / "cli.toml"),
        "vault_addr": "https://127.0.0.1:46201",
        "vault_ca_file": str(run / "openbao" / "tls" / "vault-ca.pem"),
        "mongodb_hosts": "127.0.0.1:40075",
        "mongodb_app_user": "CN=eventsvc,OU=eventsvc-clients,O=eventsvc",
        "logs": {
            "stack": str(run / "stack.log"),
            "gateway_access": str(run / "gateway-access.log"),
        },
        "timings_s": {"total": 2.32},
    }
    assert banner(state).strip("\n") == readme_example()
