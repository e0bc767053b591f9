"""Licence check of the locked runtime dependencies against an allow-list.

Licences are read from the installed distributions' metadata (the same
environment the service runs from), in the order of how precise each field is:
``License-Expression`` (PEP 639, SPDX), then a short ``License`` field, then
``License ::`` trove classifiers. Free-text values and classifiers are mapped to
SPDX identifiers only through the explicit ``aliases`` table of
``security/licenses.yml``: no guessing in code, every mapping is reviewable.

The result is parsed as an SPDX expression by ``license-expression`` (the
parser CycloneDX tooling uses too): ``OR`` needs one allowed option, ``AND``
needs every part allowed, and ``X WITH exception`` is allowed when ``X`` is
(an SPDX exception only adds permissions) or when the whole ``X WITH
exception`` is listed. An identifier that is not SPDX, or text that does not
parse, is "unknown": a finding, never a pass.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class LicensePolicy:
    """The allow-list: accepted SPDX ids and reviewed free-text → SPDX aliases."""

    allowed: frozenset[str]
    aliases: Mapping[str, str]


@dataclass(frozen=True)
class LicenseVerdict:
    """What we concluded for one locked package."""

    package: str
    version: str
    license: str  # what the metadata said (SPDX after aliasing), or "" if nothing
    source: str  # "License-Expression", "License", "classifier", "not installed", "none"
    status: str  # "allowed", "disallowed", "unknown", "version-mismatch"
    detail: str = ""


def load_policy(path: Path) -> LicensePolicy:
    """Read ``security/licenses.yml``. Raises OSError/ValueError when unusable."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    allowed = raw.get("allowed")
    if not isinstance(allowed, list) or not allowed:
        raise ValueError(f"{path}: 'allowed' must be a non-empty list of SPDX identifiers")
    aliases = raw.get("aliases") or {}
    policy = LicensePolicy(
        frozenset(str(item) for item in allowed), {str(k): str(v) for k, v in aliases.items()}
    )
    typos = sorted(
        entry for entry in (*policy.allowed, *policy.aliases.values()) if not _is_spdx(entry)
    )
    if typos:
        # A misspelt id would never match anything: every package under it would be "unknown".
        raise ValueError(f"{path}: not SPDX licence expressions: {', '.join(typos)}")
    return policy


def installed_distributions(venv: Path) -> dict[str, importlib.metadata.Distribution]:
    """Distributions of a virtualenv, by PEP 503 name, without importing anything from it."""
    site_dirs = [str(path) for path in sorted(venv.glob("lib/python3*/site-packages"))]
    if not site_dirs:
        raise FileNotFoundError(f"no site-packages under {venv}")
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=site_dirs):
        name = _field(dist.metadata, "Name")
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


@functools.cache
def _spdx() -> Licensing:
    """The SPDX licence and exception list bundled with license-expression (loaded once)."""
    return get_spdx_licensing()


@dataclass(frozen=True)
class Judgement:
    """An expression's verdict: True allowed, False disallowed, None unknown (and why)."""

    allowed: bool | None
    normalised: str  # the expression as the parser reads it (e.g. "mit" -> "MIT")
    detail: str = ""


def judge(expression: str, policy: LicensePolicy) -> Judgement:
    """Judge an SPDX licence expression against the allow-list."""
    licensing = _spdx()
    try:
        parsed = licensing.parse(expression, strict=True)
    except ExpressionError as exc:
        return Judgement(None, expression, f"not an SPDX expression: {exc}")
    if parsed is None:
        return Judgement(None, expression, "empty licence expression")
    unknown = sorted(set(licensing.unknown_license_keys(parsed)))
    verdict = _evaluate(parsed, policy, frozenset(unknown))
    detail = f"not SPDX: {', '.join(unknown)}" if verdict is None and unknown else ""
    return Judgement(verdict, str(parsed), detail)


def _is_spdx(expression: str) -> bool:
    """True for a valid SPDX expression of known ids (``LicenseRef-`` ids count as known)."""
    licensing = _spdx()
    try:
        parsed = licensing.parse(expression, strict=True)
    except ExpressionError:
        return False
    unknown = licensing.unknown_license_keys(parsed) if parsed is not None else [""]
    return all(str(key).startswith("LicenseRef-") for key in unknown)


def _evaluate(node: Any, policy: LicensePolicy, unknown: frozenset[str]) -> bool | None:
    """Three-valued: a sure "yes" or "no" wins over "unknown" where the operator allows."""
    if isinstance(node, (AND, OR)):
        values = [_evaluate(arg, policy, unknown) for arg in node.args]
        decisive = isinstance(node, OR)  # OR: one True decides; AND: one False decides
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    if isinstance(node, LicenseWithExceptionSymbol):
        whole = f"{node.license_symbol.key} WITH {node.exception_symbol.key}"
        return True if whole in policy.allowed else _evaluate(node.license_symbol, policy, unknown)
    if isinstance(node, LicenseSymbol):
        if node.key in policy.allowed:
            return True
        return None if node.key in unknown else False
    return None


def _field(metadata: importlib.metadata.PackageMetadata, name: str) -> str:
    """A single metadata field, "" when absent (indexing a missing key is deprecated)."""
    values = metadata.get_all(name) or []
    return str(values[0]).strip() if values else ""


def _declared(dist: importlib.metadata.Distribution, policy: LicensePolicy) -> tuple[str, str]:
    """(licence, source) from the most precise metadata field that says something usable."""
    metadata = dist.metadata
    expression = _field(metadata, "License-Expression")
    if expression:
        return expression.strip(), "License-Expression"
    text = _field(metadata, "License")
    # A long or multi-line License field is the licence text itself, not a name.
    if text and "\n" not in text and len(text) <= 80:
        return policy.aliases.get(text, text), "License"
    classifiers = [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    mapped = sorted({policy.aliases.get(c, c) for c in classifiers})
    if mapped:
        # Several classifiers may mean dual licensing or just noise: require all.
        return " AND ".join(mapped), "classifier"
    return "", "none"


def check(
    pins: Mapping[str, str],
    dists: Mapping[str, importlib.metadata.Distribution],
    policy: LicensePolicy,
) -> list[LicenseVerdict]:
    """One verdict per locked package; anything but "allowed" becomes a finding."""
    verdicts: list[LicenseVerdict] = []
    for package, version in sorted(pins.items()):
        dist = dists.get(canonicalize_name(package))
        if dist is None:
            verdicts.append(LicenseVerdict(package, version, "", "not installed", "unknown"))
            continue
        license_text, source = _declared(dist, policy)
        if dist.version != version:
            detail = (
                f"installed {dist.version}, locked {version}: metadata is not the locked release's"
            )
            verdicts.append(
                LicenseVerdict(package, version, license_text, source, "version-mismatch", detail)
            )
            continue
        if not license_text:
            verdicts.append(LicenseVerdict(package, version, "", source, "unknown"))
            continue
        judged = judge(license_text, policy)
        status = {True: "allowed", False: "disallowed", None: "unknown"}[judged.allowed]
        verdicts.append(
            LicenseVerdict(package, version, judged.normalised, source, status, judged.detail)
        )
    return verdicts


def summary(verdicts: Iterable[LicenseVerdict]) -> dict[str, int]:
    """Count of verdicts per status, for the stage metadata."""
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.status] = counts.get(verdict.status, 0) + 1
    return counts
