"""What ships is what runs: the eventsvc wheel holds the service and its CLI, nothing else.

The wheel is built from a copy of the tree (so the build leaves nothing in the
checkout), with the whole of src/ in it: devstack and secgate sit right beside
eventsvc and must still stay out.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


@pytest.fixture(scope="module")
def wheel(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("wheel")
    source = tree / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(repo_root / name, source / name)
    shutil.copytree(repo_root / "src", source / "src", ignore=IGNORED)
    dist = tree / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [built_wheel] = dist.glob("eventsvc-*.whl")
    return built_wheel


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_ships_the_docs_assets_and_type_marker(wheel_files: list[str]) -> None:
    for name in (
        "eventsvc/api/static/docs.html",
        "eventsvc/api/static/docs-init.js",
        "eventsvc/py.typed",
        "eventsvc/cli/__init__.py",
        "eventsvc/server.py",
    ):
        assert name in wheel_files, name


def test_wheel_ships_no_dev_stack_and_no_scan_pipeline(wheel_files: list[str]) -> None:
    packages = {name.split("/", 1)[0] for name in wheel_files if "/" in name}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"eventsvc"}


def test_wheel_installs_only_the_eventsvc_command(wheel: Path, wheel_files: list[str]) -> None:
    [entry_points] = [name for name in wheel_files if name.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(entry_points).decode()
    assert text.split() == ["[console_scripts]", "eventsvc", "=", "eventsvc.cli:main"]
