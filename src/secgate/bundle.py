"""The report bundle holds no secret: checked after every report is written.

Reports quote what scanners saw, and scanners see what we hand them: the DAST
stage's all-scope API token above all. CI uploads the bundle as an artifact,
so a secret in it is a leak. After the reports are written, every file of the
bundle is searched for

* the exact values the run handled as secrets (the DAST token), which no
  pattern could know;
* anything shaped like an eventsvc API token (``evt_<16>_<43>``, the format of
  ``src/eventsvc/tokens.py``; secgate does not import the service);
* credentials detect-secrets recognises by format (private keys, cloud and
  SaaS tokens, JWTs, basic-auth URLs). Its entropy and keyword plugins are
  left out: a report is full of hashes and of the words "secret" and "token".

Any hit fails the gate, naming the file and what was found, never the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from secgate.model import ScanContext
from secgate.tools import ToolFailed, ToolMissing, run_tool

API_TOKEN = re.compile(r"evt_[a-z0-9]{16}_[A-Za-z0-9_-]{43}")
NOISY_PLUGINS = ("HexHighEntropyString", "Base64HighEntropyString", "KeywordDetector")
MIN_KNOWN_LENGTH = 12  # shorter "secrets" would match by accident


def secrets_in_bundle(ctx: ScanContext, known: Iterable[str]) -> list[str]:
    """One line per file and kind of secret found in ``ctx.report_dir``; empty when clean."""
    values = [value for value in set(known) if len(value) >= MIN_KNOWN_LENGTH]
    problems = []
    for path in sorted(p for p in ctx.report_dir.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        name = path.relative_to(ctx.report_dir).as_posix()
        if any(value in text for value in values):
            problems.append(f"report bundle: {name} holds a secret this run used (the DAST token)")
        if API_TOKEN.search(text):
            problems.append(f"report bundle: {name} holds an eventsvc API token")
    return problems + _detect_secrets(ctx)


def _detect_secrets(ctx: ScanContext) -> list[str]:
    args = ["scan", "--all-files"]
    for plugin in NOISY_PLUGINS:
        args += ["--disable-plugin", plugin]
    try:
        run = run_tool(ctx, "detect-secrets", [*args, "."], cwd=ctx.report_dir)
        results = json.loads(run.stdout)["results"]
    except (ToolMissing, ToolFailed, ValueError, KeyError) as exc:
        return [f"report bundle: could not be checked for secrets ({type(exc).__name__}: {exc})"]
    return [
        f"report bundle: {name} line {hit.get('line_number')} holds a {hit.get('type')}"
        for name, hits in sorted(results.items())
        for hit in hits
    ]
