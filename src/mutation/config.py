"""``security/mutation.toml``: the modules to mutate, the tests for each, the bar to clear.

One place lists what a reviewer needs to judge the result: each module with
the tests that guard it (only those run against its mutants, so a mutant is
killed by the tests meant to catch it, not by accident elsewhere), the
kill-rate threshold, and every mutant accepted as equivalent with the reason
it cannot change behaviour. An equivalent mutant is named by module,
operator (a regular expression), position and the source line it is on
(``code``, stripped): when the code moves, the config no longer loads and says
where that line went, so an entry can neither drift onto another mutant nor
silently stop matching its own.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MutationConfigError(ValueError):
    """The config file is missing something or names something that does not exist."""


@dataclass(frozen=True)
class ModuleUnderTest:
    """A source file to mutate and the test files that must kill its mutants."""

    path: str
    tests: tuple[str, ...]

    @property
    def slug(self) -> str:
        """Its results' directory name: ``src/eventsvc/audit/log.py`` -> ``eventsvc.audit.log``."""
        return self.path.removeprefix("src/").removesuffix(".py").replace("/", ".")


@dataclass(frozen=True)
class EquivalentMutant:
    """A mutant that cannot change behaviour, and why (it is left out of the kill rate).

    ``operator`` is a regular expression over cosmic-ray's operator names, so
    one entry can cover every replacement of one operator at one position
    (``core/ReplaceBinaryOperator_BitOr_.*`` for a ``str | None`` annotation).
    """

    module: str
    operator: str
    line: int
    column: int
    code: str  # the line's text, stripped: checked against the module when the config loads
    reason: str


@dataclass(frozen=True)
class MutationConfig:
    threshold: float
    min_timeout_seconds: float
    timeout_factor: float
    exclude_operators: tuple[str, ...]
    skip_annotation_mutants: bool  # see mutation/annotation_mutants.py
    modules: tuple[ModuleUnderTest, ...]
    equivalents: tuple[EquivalentMutant, ...]

    def module(self, path: str) -> ModuleUnderTest:
        for candidate in self.modules:
            if path in (candidate.path, candidate.slug):
                return candidate
        raise MutationConfigError(f"{path} is not a module in the mutation config")

    def equivalent(
        self, module: str, operator: str, line: int, column: int
    ) -> EquivalentMutant | None:
        for entry in self.equivalents:
            if (entry.module, entry.line, entry.column) == (module, line, column) and re.fullmatch(
                entry.operator, operator
            ):
                return entry
        return None


def load_config(path: Path, repo_root: Path) -> MutationConfig:
    """Read and check the config: every module and test file must exist in ``repo_root``."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    threshold = float(_required(data, "threshold", path))
    if not 0 < threshold <= 1:
        raise MutationConfigError(f"{path}: threshold must be in (0, 1], got {threshold}")
    modules = tuple(_module(entry, path, repo_root) for entry in data.get("module", []))
    if not modules:
        raise MutationConfigError(f"{path}: no [[module]] entries")
    sources = {module.path: _lines(repo_root / module.path) for module in modules}
    equivalents = tuple(_equivalent(entry, path, sources) for entry in data.get("equivalent", []))
    return MutationConfig(
        threshold=threshold,
        min_timeout_seconds=float(data.get("min_timeout_seconds", 60)),
        timeout_factor=float(data.get("timeout_factor", 3)),
        exclude_operators=tuple(str(pattern) for pattern in data.get("exclude_operators", [])),
        skip_annotation_mutants=_flag(data, "skip_annotation_mutants", path),
        modules=modules,
        equivalents=equivalents,
    )


def _required(entry: dict[str, Any], key: str, path: Path) -> Any:
    if key not in entry:
        raise MutationConfigError(f"{path}: missing {key!r} in {entry!r}")
    return entry[key]


def _flag(data: dict[str, Any], key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise MutationConfigError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def _module(entry: dict[str, Any], path: Path, repo_root: Path) -> ModuleUnderTest:
    module = ModuleUnderTest(
        path=str(_required(entry, "path", path)),
        tests=tuple(str(test) for test in _required(entry, "tests", path)),
    )
    for file in (module.path, *module.tests):
        if not (repo_root / file).is_file():
            raise MutationConfigError(f"{path}: {file} does not exist")
    if not module.tests:
        raise MutationConfigError(f"{path}: {module.path} lists no tests")
    return module


def _lines(source: Path) -> list[str]:
    return source.read_text(encoding="utf-8").splitlines()


def _equivalent(
    entry: dict[str, Any], path: Path, sources: dict[str, list[str]]
) -> EquivalentMutant:
    equivalent = EquivalentMutant(
        module=str(_required(entry, "module", path)),
        operator=str(_required(entry, "operator", path)),
        line=int(_required(entry, "line", path)),
        column=int(_required(entry, "column", path)),
        code=str(_required(entry, "code", path)).strip(),
        reason=str(_required(entry, "reason", path)).strip(),
    )
    if equivalent.module not in sources:
        raise MutationConfigError(
            f"{path}: equivalent mutant in unknown module {equivalent.module}"
        )
    if not equivalent.reason:
        raise MutationConfigError(f"{path}: every equivalent mutant needs a reason")
    _check_code(equivalent, path, sources[equivalent.module])
    return equivalent


def _check_code(equivalent: EquivalentMutant, path: Path, lines: list[str]) -> None:
    """The entry's line must still read ``code``; else say where that code is now, if anywhere."""
    found = lines[equivalent.line - 1].strip() if 0 < equivalent.line <= len(lines) else None
    if found == equivalent.code:
        return
    moved_to = [
        str(number) for number, text in enumerate(lines, 1) if text.strip() == equivalent.code
    ]
    where = (
        f"it is now on line {', '.join(moved_to)}" if moved_to else "it is no longer in the module"
    )
    raise MutationConfigError(
        f"{path}: the equivalent mutant at {equivalent.module}:{equivalent.line} names the code "
        f"{equivalent.code!r}, but that line reads {found!r} ({where}): move the entry and "
        "check that its reason still holds"
    )
