"""secgate imports nothing from the project it scans (eventsvc) or its dev tooling (devstack).

Two checks: every import statement in src/secgate (including imports inside
functions), and the modules a fresh interpreter holds after importing every
secgate module (which would also catch an ``importlib.import_module``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SECGATE_SRC = Path(__file__).resolve().parents[2] / "src" / "secgate"
FORBIDDEN = {"eventsvc", "devstack"}


def imported_modules(source: Path) -> set[str]:
    """Top-level names of every module ``source`` imports (relative imports are secgate's own)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_secgate_source_file_imports_the_scanned_project() -> None:
    sources = sorted(SECGATE_SRC.rglob("*.py"))
    assert len(sources) > 20
    offenders = {
        str(path.relative_to(SECGATE_SRC)): sorted(imported_modules(path) & FORBIDDEN)
        for path in sources
        if imported_modules(path) & FORBIDDEN
    }
    assert offenders == {}


def test_importing_all_of_secgate_loads_nothing_of_the_project() -> None:
    program = f"""
import json, pkgutil, importlib, sys
import secgate
for module in pkgutil.walk_packages(secgate.__path__, "secgate."):
    importlib.import_module(module.name)
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {FORBIDDEN!r})))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
