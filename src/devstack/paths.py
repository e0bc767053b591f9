"""Where one stack lives on disk, and the pid files that say which processes are its.

``make`` uses ``.run/`` at the repository root; tests and the DAST target use
their own directories, so several stacks never share a file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_FILE = REPO_ROOT / "vault" / "bootstrap.yaml"
GATEWAY_CONFIG_DIR = REPO_ROOT / "gateway"


@dataclass(frozen=True)
class StackPaths:
    """Where everything of one stack lives (``.run/`` at the repo root for make).

    ``api_instance`` names one of several API instances (``make run-ha``): its
    runtime directory, log and wrapped secret_id get the number as a suffix,
    so no two instances share a file; everything else is the stack's.
    """

    root: Path
    api_instance: int | None = None

    def for_api_instance(self, instance: int) -> StackPaths:
        """The same stack's paths, as seen by API instance ``instance``."""
        return replace(self, api_instance=instance)

    def _instance_name(self, base: str) -> str:
        return base if self.api_instance is None else f"{base}-{self.api_instance}"

    @property
    def openbao_dir(self) -> Path:
        return self.root / "openbao"

    @property
    def mongod_dir(self) -> Path:
        return self.root / "mongod"

    @property
    def bootstrap_dir(self) -> Path:
        return self.root / "bootstrap"

    @property
    def api_runtime_dir(self) -> Path:
        return self.root / self._instance_name("eventsvc")

    @property
    def api_log(self) -> Path:
        return self.root / (self._instance_name("eventsvc") + ".log")

    @property
    def gateway_dir(self) -> Path:
        """The gateway's rendered configuration and its TLS files."""
        return self.root / "gateway"

    @property
    def gateway_log(self) -> Path:
        return self.root / "gateway.log"

    @property
    def gateway_access_log(self) -> Path:
        """Traefik's access log, one JSON object per request (no headers)."""
        return self.root / "gateway-access.log"

    @property
    def stack_log(self) -> Path:
        return self.root / "stack.log"

    @property
    def ca_file(self) -> Path:
        """The PKI chain that issued the API's and mongod's certificates: what clients trust."""
        return self.root / "ca.pem"

    @property
    def cli_config(self) -> Path:
        return self.root / "cli.toml"

    @property
    def operator_config(self) -> Path:
        """The dev stack's operator token (tokens:admin), 0600: what ``devstack token`` uses."""
        return self.root / "operator.toml"

    @property
    def dev_token_config(self) -> Path:
        """The last token ``devstack token`` minted, as a 0600 CLI config file."""
        return self.root / "dev-token.toml"

    @property
    def auditor_vault_token(self) -> Path:
        """An OpenBao token with policy ``eventsvc-auditor`` (24 h, 0600) for ``audit verify``."""
        return self.root / "auditor-vault-token"

    @property
    def report_signer_token(self) -> Path:
        """An OpenBao token with policy ``eventsvc-report-signer`` (24 h, 0600): sign-report."""
        return self.root / "report-signer-vault-token"

    @property
    def wrapped_secret_id_file(self) -> Path:
        return self.root / (self._instance_name("secret-id") + ".wrapped")

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def pid_file(self, component: str) -> Path:
        return self.root / f"{component}.pid"


def write_pid(paths: StackPaths, component: str, pid: int | None) -> None:
    """Record ``component``'s pid, so ``down`` can stop it even if the runner was killed."""
    if pid is not None:
        paths.pid_file(component).write_text(f"{pid}\n", encoding="ascii")


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None when there is no readable one."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
