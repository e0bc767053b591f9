"""The Dockerfile keeps the promises SECURITY.md makes about the image.

No container engine is needed (none exists on every machine that runs the tests):
the image workflow builds it, runs it read-only and scans it; hadolint lints it in
tests/secgate/test_config.py. These read what the Dockerfile says.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click

from eventsvc.cli import commands

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
INSTRUCTIONS = [
    line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]  # fmt: skip


def instructions(keyword: str) -> list[str]:
    return [line for line in INSTRUCTIONS if line.split(" ", 1)[0] == keyword]


def test_every_base_image_is_pinned_by_digest() -> None:
    bases = instructions("FROM")
    assert len(bases) == 2  # builder and runtime
    for line in bases:
        assert re.fullmatch(r"FROM \S+:\S+@sha256:[0-9a-f]{64} AS \w+", line), line


def test_it_runs_as_a_numeric_non_root_user_and_serves() -> None:
    assert instructions("USER")[-1] == "USER 10001:10001"
    assert instructions("ENTRYPOINT") == ['ENTRYPOINT ["eventsvc", "serve"]']
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert scripts["project"]["scripts"]["eventsvc"] == "eventsvc.cli:main"
    assert isinstance(commands.cli, click.Group)
    assert "serve" in commands.cli.commands


def test_it_writes_nothing_outside_tmp_and_installs_only_locked_hashes() -> None:
    env = " ".join(instructions("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    installs = [
        part for line in instructions("RUN") for part in line.split("&&") if "pip install" in part
    ]
    assert installs
    for part in installs:
        assert "--require-hashes" in part or "--no-index" in part, part
    assert instructions("HEALTHCHECK") == ["HEALTHCHECK NONE"]  # the reason is beside it


def test_the_build_context_is_an_allow_list() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    assert ignored[0] == "*"  # everything out, then each needed path back in
    copied = {"requirements/pip.txt", "requirements/build.txt", "requirements/runtime.txt"}
    assert {f"!{name}" for name in copied} <= set(ignored)
    assert "!.run" not in ignored
