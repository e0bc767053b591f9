"""The gateway's configuration as devstack renders it, and the binary it runs (no process started
but ``traefik version``)."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml

from devstack.errors import StackError
from devstack.gateway import (
    ADMIN_CIDRS_ENV,
    LOOPBACK_CIDRS,
    GatewayCert,
    GatewayConfig,
    gateway_config_from_env,
    pick_gateway_port,
    render_gateway_config,
    start_gateway,
    traefik_binary,
)
from devstack.paths import GATEWAY_CONFIG_DIR, StackPaths


def test_the_traefik_wheel_ships_a_working_3_7_binary() -> None:
    version = subprocess.run(
        [str(traefik_binary({})), "version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Version:      3.7." in version


def test_a_traefik_override_that_is_not_executable_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"EVENTSVC_TRAEFIK_BIN=.* is not an executable"):
        traefik_binary({"EVENTSVC_TRAEFIK_BIN": str(tmp_path / "missing")})


def test_a_gateway_needs_at_least_one_backend(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no API instance to put behind the gateway"):
        start_gateway(StackPaths(tmp_path), [], hvac.Client(), ca_file=tmp_path / "ca.pem")


def test_the_admin_allow_list_defaults_to_loopback() -> None:
    assert gateway_config_from_env({}).admin_source_ranges == LOOPBACK_CIDRS
    assert gateway_config_from_env({ADMIN_CIDRS_ENV: "  "}).admin_source_ranges == LOOPBACK_CIDRS


def test_the_admin_allow_list_is_read_from_the_environment_as_networks() -> None:
    config = gateway_config_from_env({ADMIN_CIDRS_ENV: "10.1.2.3/16, 127.0.0.1, ::1"})
    assert config.admin_source_ranges == ("10.1.0.0/16", "127.0.0.1/32", "::1/128")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "localhost", "0.0.0.0/0 # all", ""])
def test_a_value_that_is_not_a_network_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(StackError, match=f"{ADMIN_CIDRS_ENV}: .* is not a network"):
        gateway_config_from_env({ADMIN_CIDRS_ENV: f"127.0.0.1/32,{bad}"})


def rendered(tmp_path: Path, config: GatewayConfig, backends: list[str]) -> dict[str, Any]:
    paths = StackPaths(tmp_path / ".run")
    now = datetime.now(UTC)
    cert = GatewayCert(tmp_path / "c.pem", tmp_path / "c.key", "01", now, now + timedelta(hours=1))
    static = render_gateway_config(
        paths, backends, cert, ca_file=tmp_path / "ca.pem", port=18443, config=config
    )
    documents = {"static": yaml.safe_load(static.read_text(encoding="utf-8"))}
    for name in ("routers", "middlewares", "tls"):
        path = paths.gateway_dir / "dynamic" / f"{name}.yml"
        documents[name] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return documents


def test_the_templates_render_to_the_configuration_they_say(tmp_path: Path) -> None:
    config = GatewayConfig(admin_source_ranges=("10.0.0.0/8",), rate_average=7)
    backends = ["https://127.0.0.1:1111", "https://127.0.0.1:2222"]
    documents = rendered(tmp_path, config, backends)
    entry = documents["static"]["entryPoints"]["api"]
    assert entry["address"] == "127.0.0.1:18443"
    assert entry["forwardedHeaders"] == {"insecure": False, "trustedIPs": []}
    assert entry["http"]["maxHeaderBytes"] == config.max_header_bytes
    assert documents["static"]["accessLog"]["fields"]["headers"]["defaultMode"] == "drop"
    http = documents["routers"]["http"]
    service = http["services"]["eventsvc"]["loadBalancer"]
    assert service["servers"] == [{"url": url} for url in backends]
    assert service["healthCheck"]["path"] == "/readyz"
    transport = http["serversTransports"]["eventsvc-api"]
    assert transport == {
        "serverName": "localhost",
        "rootCAs": [str(tmp_path / "ca.pem")],
        "forwardingTimeouts": {"dialTimeout": "5s", "responseHeaderTimeout": "30s"},
    }
    assert "insecureSkipVerify" not in transport
    middlewares = documents["middlewares"]["http"]["middlewares"]
    assert middlewares["admin-allow-list"]["ipAllowList"]["sourceRange"] == ["10.0.0.0/8"]
    assert middlewares["per-address-rate"]["rateLimit"]["average"] == 7
    assert "admin-allow-list" in http["routers"]["admin"]["middlewares"]
    default_tls = documents["tls"]["tls"]["options"]["default"]
    assert default_tls["minVersion"] == "VersionTLS12"


def test_every_placeholder_is_filled(tmp_path: Path) -> None:
    rendered(tmp_path, GatewayConfig(), ["https://127.0.0.1:1111"])
    for path in (tmp_path / ".run" / "gateway").rglob("*.yml"):
        assert "${" not in path.read_text(encoding="utf-8"), path
    templates = [GATEWAY_CONFIG_DIR / "traefik.yml", *GATEWAY_CONFIG_DIR.glob("dynamic/*.yml")]
    assert len(templates) == 4


def test_traefik_is_found_on_path_when_no_wheel_is_beside_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    on_path = bin_dir / "traefik"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert traefik_binary({"PATH": str(bin_dir)}) == on_path
    with pytest.raises(StackError, match="no traefik binary: install traefik-bin"):
        traefik_binary({"PATH": str(tmp_path / "empty")})


def test_a_taken_port_is_replaced_by_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        chosen = pick_gateway_port(busy)
    assert chosen not in (busy, 0)
