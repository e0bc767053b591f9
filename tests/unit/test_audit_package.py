"""The audit package's import boundaries: offline verification needs no database driver.

``eventsvc audit verify`` runs on an auditor's machine with an exported file
and the key. Each check starts a fresh interpreter, because this test
process has long since imported pymongo.
"""

from __future__ import annotations

import json
import subprocess
import sys

DRIVER_PACKAGES = ("pymongo", "bson")


def modules_after_importing(module: str) -> set[str]:
    """The names in ``sys.modules`` once a fresh interpreter has imported ``module``."""
    program = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(completed.stdout))


def driver_modules(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in DRIVER_PACKAGES}


def test_the_verifier_imports_no_pymongo_and_no_other_audit_module() -> None:
    modules = modules_after_importing("eventsvc.audit.verify")
    assert driver_modules(modules) == set()
    audit_modules = {name for name in modules if name.startswith("eventsvc.audit")}
    assert audit_modules == {
        "eventsvc.audit",
        "eventsvc.audit.record",
        "eventsvc.audit.signing",  # Ed25519 checkpoint signatures (cryptography only)
        "eventsvc.audit.verify",
    }


def test_the_offline_verify_command_imports_no_pymongo() -> None:
    # What `eventsvc audit verify --key-file` loads: the CLI, then its file verifier.
    modules = modules_after_importing("eventsvc.cli, eventsvc.cli.audit_file")
    assert driver_modules(modules) == set()
