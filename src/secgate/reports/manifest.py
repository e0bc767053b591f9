"""manifest.json: the SHA-256 of every artifact of a run, so auditors can check
that the reports they were handed are the ones the pipeline produced."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from secgate.pipeline import RunInfo


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def collect(run_dir: Path, exclude: set[str]) -> dict[str, str]:
    """{relative path: sha256} for every file in the run directory."""
    hashes = {}
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if not path.is_file() or relative.as_posix() in exclude:
            continue
        hashes[relative.as_posix()] = sha256(path)
    return hashes


def write(path: Path, info: RunInfo, run_dir: Path) -> Path:
    document = {
        "run_id": info.run_id,
        "commit": info.commit,
        "algorithm": "sha256",
        "artifacts": collect(run_dir, exclude={path.name}),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
