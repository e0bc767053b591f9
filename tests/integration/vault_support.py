"""Helpers shared by the Vault integration tests: a real bao, bootstrapped from vault/."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest

from devstack.openbao import (
    BootstrapResult,
    RunningOpenBao,
    bootstrap,
    deliver_wrapped_secret_id,
    role_id,
    start_openbao,
)
from eventsvc.settings import VaultSettings

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_FILE = REPO / "vault" / "bootstrap.yaml"


@dataclass(frozen=True)
class Stack:
    """A running, bootstrapped OpenBao and what a test needs to log in to it."""

    bao: RunningOpenBao
    boot: BootstrapResult
    root: hvac.Client

    def config(self, tmp_path: Path, **overrides: Any) -> VaultSettings:
        """Vault settings for the eventsvc AppRole with a fresh wrapped secret_id in tmp_path."""
        role = overrides.pop("approle_role", "eventsvc")
        wrapped = deliver_wrapped_secret_id(
            self.root, tmp_path / "wrapped-secret-id", role_name=role
        )
        values: dict[str, Any] = {
            "addr": self.bao.addr,
            "ca_file": self.bao.ca_file,
            "role_id": role_id(self.root, role_name=role),
            "wrapped_secret_id_file": wrapped,
            "approle_role": role,
        }
        values.update(overrides)
        return VaultSettings(**values)


def start_stack(workdir: Path) -> Stack:
    bao = start_openbao(workdir / "bao")
    try:
        root = bao.root_client()
        boot = bootstrap(root, BOOTSTRAP_FILE, workdir / "bootstrap")
    except BaseException:
        bao.stop()
        raise
    return Stack(bao=bao, boot=boot, root=root)


def assert_no_secret_in(text: str, secrets: Iterable[str]) -> None:
    """Fail naming only *which* secret leaked (by position), never its value."""
    for index, secret in enumerate(secrets):
        assert secret, f"secret #{index} is empty: the test would prove nothing"
        assert secret not in text, f"secret #{index} appears in the captured output"


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG on every logger, hvac and urllib3 included."""
    caplog.set_level(logging.DEBUG)
