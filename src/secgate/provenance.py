"""What produced a verdict: the gate's version, the state of the tree, the configuration in force.

An auditor reading a report must be able to tell *which* gate judged *which*
tree with *which* rules: the first screen shows the secgate version with a hash
of its code, whether the tree had uncommitted changes, and the SHA-256 of every
configuration file that decides the verdict.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from secgate import git

SECGATE_VERSION = "1.1.0"
# Relative to the project root; a folder's hash covers every file in it (names and contents).
CONFIG_FILES = (
    "security/policy.yml",
    "security/waivers.yml",
    "security/semgrep/",
    "security/bandit.yml",
    ".secrets.baseline",
    "security/schemathesis.toml",
    "security/licenses.yml",
    "security/controls.yml",
)


@dataclass(frozen=True)
class Provenance:
    """The gate, the tree and the configuration of one run."""

    secgate: str  # version and a hash of the code that ran
    tree: str  # "clean", "N uncommitted change(s): ...", or why it is unknown
    config: dict[str, str] = field(default_factory=dict)  # file -> sha256 ("absent")

    def lines(self) -> list[str]:
        config = ", ".join(f"{name} {digest[:12]}" for name, digest in self.config.items())
        return [f"secgate {self.secgate}", f"tree: {self.tree}", f"configuration: {config}"]


def collect(root: Path) -> Provenance:
    """Describe the gate that is running and the tree and configuration it judges."""
    code = _tree_hash(Path(__file__).resolve().parent, "*.py")
    return Provenance(
        secgate=f"{SECGATE_VERSION} (code sha256 {code[:16]})",
        tree=_tree_state(root),
        config={name: _config_hash(root, name) for name in CONFIG_FILES},
    )


def _tree_state(root: Path) -> str:
    changed = git.uncommitted(root)
    if changed is None:
        return "unknown (not a git checkout)"
    if not changed:
        return "clean (no uncommitted change)"
    shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
    return f"{len(changed)} uncommitted change(s): {shown}"


def _config_hash(root: Path, name: str) -> str:
    path = root / name
    if name.endswith("/"):
        return _tree_hash(path, "*") if path.is_dir() else "absent"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


def _tree_hash(folder: Path, pattern: str) -> str:
    """SHA-256 over the relative names and contents of the files under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
