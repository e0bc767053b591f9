"""What a change does to the gate's own configuration, compared with the base branch.

The gate reads its policy, waivers, semgrep rules, bandit settings, secrets
baseline and DAST expectations from the tree under review, so a pull request
can loosen the gate that judges it. CODEOWNERS makes the security owners
review such a change; this module makes sure they *see* it: every relaxation
(a threshold raised, a rule or a rule test removed, a waiver added or
extended, a baseline entry added, an exclusion widened) is listed first in the
report, the console and the CI job summary. Other changes to those files, and
to the gate's own code, are listed as "changed" for the same reviewer.

It does not fail the gate: whether a relaxation is right is the reviewer's
call, and CODEOWNERS makes that review mandatory.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from secgate import git
from secgate.freshness import load_acknowledgements
from secgate.policy import load_policy
from secgate.waivers import load_waivers

POLICY = "security/policy.yml"
WAIVERS = "security/waivers.yml"
BANDIT = "security/bandit.yml"
BANDIT_LEVELS = "security/bandit-levels.yml"
_LEVELS = {"low": 1, "medium": 2, "high": 3, "critical": 4}
BASELINE = ".secrets.baseline"
SEMGREP_DIR = "security/semgrep"
WATCHED_DIRS = ("security", "src/secgate", ".github")
NOT_CONFIG = ("security/reports/",)  # scan output, not configuration
CODEOWNERS = ".github/CODEOWNERS"
_SEMGREP_SEVERITY = {"INFO": 0, "WARNING": 1, "ERROR": 2}


@dataclass(frozen=True)
class ConfigChange:
    """One difference from the base branch in what decides the verdict."""

    file: str
    change: str
    relaxes: bool  # True: the gate may now let through what it blocked before

    def line(self) -> str:
        return f"{'RELAXED' if self.relaxes else 'review'}: {self.file}: {self.change}"


@dataclass(frozen=True)
class ConfigReview:
    """The comparison of the gate's configuration with ``base_ref``."""

    base_ref: str
    base_commit: str | None = None
    changes: list[ConfigChange] = field(default_factory=list)
    problem: str | None = None  # why no comparison could be made

    @property
    def relaxations(self) -> list[ConfigChange]:
        return [change for change in self.changes if change.relaxes]

    def headline(self) -> str:
        """One line for the first screen of every report."""
        if self.problem is not None:
            return f"gate configuration: NOT COMPARED with {self.base_ref}: {self.problem}"
        where = f"{self.base_ref} ({(self.base_commit or '')[:12]})"
        if not self.changes:
            return f"gate configuration: unchanged from {where}"
        return (
            f"gate configuration vs {where}: {len(self.relaxations)} relaxation(s), "
            f"{len(self.changes) - len(self.relaxations)} other change(s); review them first"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "base_ref": self.base_ref,
            "base_commit": self.base_commit,
            "problem": self.problem,
            "changes": [
                {"file": c.file, "change": c.change, "relaxes": c.relaxes} for c in self.changes
            ],
        }


def review(root: Path, base_ref: str) -> ConfigReview:
    """Compare the configuration in ``root``'s working tree with the one at ``base_ref``."""
    base_commit = git.resolve(root, base_ref)
    if base_commit is None:
        return ConfigReview(base_ref, problem=f"git does not know {base_ref!r} in {root}")
    base = _Snapshot(root, base_commit)
    changes = [
        *_policy_changes(root, base),
        *_waiver_changes(root, base),
        *_semgrep_changes(root, base),
        *_bandit_changes(root, base),
        *_bandit_level_changes(root, base),
        *_baseline_changes(root, base),
        *_codeowners_changes(root, base),
    ]
    handled = {POLICY, WAIVERS, BANDIT, BANDIT_LEVELS, BASELINE, CODEOWNERS}
    changes += _other_changes(root, base, handled)
    return ConfigReview(base_ref, base_commit, changes)


class _Snapshot:
    """Files as they were at the base commit."""

    def __init__(self, root: Path, commit_hash: str) -> None:
        self.root = root
        self.commit = commit_hash

    def text(self, path: str) -> str | None:
        return git.show(self.root, self.commit, path)

    def files(self, folder: str) -> list[str]:
        return git.list_files(self.root, self.commit, folder)


def _head_text(root: Path, path: str) -> str | None:
    target = root / path
    return target.read_text(encoding="utf-8", errors="replace") if target.is_file() else None


def _load_text(text: str | None, name: str, loader: Callable[[Path], Any]) -> Any:
    """Run a file loader on text from git (the loaders read paths; missing means defaults)."""
    with tempfile.TemporaryDirectory(prefix="secgate-base-") as folder:
        path = Path(folder) / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        return loader(path)


def _policy_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    try:
        before = _load_text(base.text(POLICY), "policy.yml", load_policy)
    except ValueError as exc:
        return [ConfigChange(POLICY, f"base version unreadable ({exc}); review it whole", True)]
    after = load_policy(root / POLICY)
    changes = []
    for stage in sorted(set(before.stages) | set(after.stages)):
        old, new = before.for_stage(stage), after.for_stage(stage)
        for name in ("min_severity", "min_confidence"):
            was, now = getattr(old, name), getattr(new, name)
            if was != now:
                verb = "raised" if now > was else "lowered"
                changes.append(
                    ConfigChange(
                        POLICY,
                        f"stages.{stage}.{name} {verb}: {was.name.lower()} -> {now.name.lower()}",
                        now > was,
                    )
                )
    if after.advisory_max_age_days != before.advisory_max_age_days:
        was, now = before.advisory_max_age_days, after.advisory_max_age_days
        changes.append(
            ConfigChange(POLICY, f"advisory_data.max_age_days {was} -> {now} days", now > was)
        )
    return changes


def _waiver_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    text = base.text(WAIVERS)
    try:
        old_waivers = _load_text(text, "waivers.yml", load_waivers)
        old_acks = _load_text(text, "waivers.yml", load_acknowledgements)
    except ValueError as exc:
        return [ConfigChange(WAIVERS, f"base version unreadable ({exc}); review it whole", True)]
    changes = []
    before = {w.fingerprint: w for w in old_waivers}
    for waiver in load_waivers(root / WAIVERS):
        what = f"{waiver.stage} {waiver.rule or waiver.fingerprint[:16]} ({waiver.owner})"
        old = before.get(waiver.fingerprint)
        if old is None:
            changes.append(
                ConfigChange(
                    WAIVERS,
                    f"waiver added: {what}, until {waiver.expires}: {waiver.reason}",
                    True,
                )
            )
        elif waiver.expires > old.expires:
            changes.append(
                ConfigChange(
                    WAIVERS, f"waiver extended: {what}, {old.expires} -> {waiver.expires}", True
                )
            )
    acks_before = {a.data_date: a for a in old_acks}
    for ack in load_acknowledgements(root / WAIVERS):
        previous = acks_before.get(ack.data_date)
        if previous is None:
            changes.append(
                ConfigChange(
                    WAIVERS,
                    f"stale advisory data of {ack.data_date} accepted until {ack.expires} "
                    f"({ack.owner}): {ack.reason}",
                    True,
                )
            )
        elif ack.expires > previous.expires:
            changes.append(
                ConfigChange(
                    WAIVERS,
                    f"acceptance of advisory data of {ack.data_date} extended: "
                    f"{previous.expires} -> {ack.expires}",
                    True,
                )
            )
    return changes


@dataclass
class _Rules:
    """The semgrep rules of one version: each rule's definition and how many ruleid tests."""

    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    rule_tests: Counter[str] = field(default_factory=Counter)


def _semgrep_rules(files: Iterable[tuple[str, str | None]]) -> _Rules:
    rules = _Rules()
    for name, text in files:
        if text is None:
            continue
        if name.endswith((".yml", ".yaml")):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            for rule in (data or {}).get("rules", []) if isinstance(data, dict) else []:
                if isinstance(rule, dict) and "id" in rule:
                    rules.definitions[str(rule["id"])] = rule
        else:
            for line in text.splitlines():
                _, marker, ids = line.partition("ruleid:")
                if marker:
                    rules.rule_tests.update(i.strip() for i in ids.split(",") if i.strip())
    return rules


def _semgrep_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    before = _semgrep_rules((name, base.text(name)) for name in base.files(SEMGREP_DIR))
    head_dir = root / SEMGREP_DIR
    head_files = sorted(p for p in head_dir.rglob("*") if p.is_file()) if head_dir.is_dir() else []
    after = _semgrep_rules(
        (str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace"))
        for p in head_files
    )
    changes = []
    for rule_id, old in sorted(before.definitions.items()):
        new = after.definitions.get(rule_id)
        if new is None:
            changes.append(ConfigChange(SEMGREP_DIR, f"rule {rule_id} removed", True))
            continue
        old_level = _SEMGREP_SEVERITY.get(str(old.get("severity")), 0)
        if _SEMGREP_SEVERITY.get(str(new.get("severity")), 0) < old_level:
            changes.append(
                ConfigChange(
                    SEMGREP_DIR,
                    f"rule {rule_id} severity lowered: {old.get('severity')} -> "
                    f"{new.get('severity')}",
                    True,
                )
            )
        elif _canonical(old) != _canonical(new):
            changes.append(
                ConfigChange(SEMGREP_DIR, f"rule {rule_id} changed; check it still matches", False)
            )
    for rule_id in sorted(set(after.definitions) - set(before.definitions)):
        changes.append(ConfigChange(SEMGREP_DIR, f"rule {rule_id} added", False))
    for rule_id, count in sorted(before.rule_tests.items()):
        if after.rule_tests[rule_id] < count:
            changes.append(
                ConfigChange(
                    SEMGREP_DIR,
                    f"ruleid tests of {rule_id} removed: {count} -> {after.rule_tests[rule_id]}",
                    True,
                )
            )
    return changes


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _bandit_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    old = _yaml_mapping(base.text(BANDIT))
    new = _yaml_mapping(_head_text(root, BANDIT))
    if _canonical(old) == _canonical(new):
        return []
    changes = []
    for key, verb in (("skips", "skipped"), ("exclude_dirs", "excluded")):
        added = sorted(set(map(str, new.get(key) or [])) - set(map(str, old.get(key) or [])))
        if added:
            changes.append(ConfigChange(BANDIT, f"{verb}: {', '.join(added)}", True))
    if new.get("tests") and set(map(str, new["tests"])) != set(map(str, old.get("tests") or [])):
        changes.append(ConfigChange(BANDIT, "tests: only a listed subset runs now", True))
    if not changes:
        changes.append(ConfigChange(BANDIT, "changed; check what bandit still reports", False))
    return changes


def _bandit_level_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    """A raise of bandit's level removed or lowered lets that class through again."""
    old = _yaml_mapping(base.text(BANDIT_LEVELS)).get("raise") or {}
    new = _yaml_mapping(_head_text(root, BANDIT_LEVELS)).get("raise") or {}
    if _canonical(old) == _canonical(new):
        return []
    changes = []
    for test, levels in sorted(old.items()):
        now = new.get(test)
        if not isinstance(now, dict):
            changes.append(ConfigChange(BANDIT_LEVELS, f"raise of {test} removed", True))
            continue
        for key in ("severity", "confidence"):
            was, is_now = _LEVELS.get(str(levels.get(key)), 0), _LEVELS.get(str(now.get(key)), 0)
            if is_now < was:
                change = f"raise of {test} {key} lowered: {levels.get(key)} -> {now.get(key)}"
                changes.append(ConfigChange(BANDIT_LEVELS, change, True))
    return changes or [ConfigChange(BANDIT_LEVELS, "changed; check what it still raises", False)]


def _yaml_mapping(text: str | None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {"unreadable": text}
    return data if isinstance(data, dict) else {}


def _baseline_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    old = _json_mapping(base.text(BASELINE))
    new = _json_mapping(_head_text(root, BASELINE))
    changes = []
    old_entries = _baseline_entries(old)
    for key, entry in sorted(_baseline_entries(new).items()):
        where = f"{entry.get('filename')} ({entry.get('type')}, line {entry.get('line_number')})"
        previous = old_entries.get(key)
        if previous is None:
            changes.append(ConfigChange(BASELINE, f"entry added: {where}", True))
        elif previous.get("is_secret") is not False and entry.get("is_secret") is False:
            change = f"entry now audited as not secret: {where}"
            changes.append(ConfigChange(BASELINE, change, True))
    old_excludes, new_excludes = _exclusions(old), _exclusions(new)
    for pattern in sorted(new_excludes - old_excludes):
        changes.append(ConfigChange(BASELINE, f"files excluded from the scan: {pattern}", True))
    old_plugins, new_plugins = _plugins(old), _plugins(new)
    for name in sorted(set(old_plugins) - set(new_plugins)):
        changes.append(ConfigChange(BASELINE, f"detector removed: {name}", True))
    for name in sorted(set(old_plugins) & set(new_plugins)):
        if old_plugins[name] != new_plugins[name]:
            changes.append(
                ConfigChange(
                    BASELINE,
                    f"detector {name} settings changed: {old_plugins[name]} -> {new_plugins[name]}",
                    True,
                )
            )
    return changes


def _json_mapping(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _baseline_entries(baseline: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    entries = {}
    for results in (baseline.get("results") or {}).values():
        for entry in results if isinstance(results, list) else []:
            if isinstance(entry, dict):
                key = (
                    str(entry.get("filename")),
                    str(entry.get("type")),
                    str(entry.get("hashed_secret")),
                )
                entries[key] = entry
    return entries


def _exclusions(baseline: dict[str, Any]) -> set[str]:
    patterns: set[str] = set()
    for item in baseline.get("filters_used") or []:
        if isinstance(item, dict) and str(item.get("path", "")).endswith("should_exclude_file"):
            patterns.update(map(str, item.get("pattern") or []))
    return patterns


def _plugins(baseline: dict[str, Any]) -> dict[str, str]:
    return {
        str(item.get("name")): _canonical(item)
        for item in baseline.get("plugins_used") or []
        if isinstance(item, dict)
    }


def _codeowners_changes(root: Path, base: _Snapshot) -> list[ConfigChange]:
    old, new = base.text(CODEOWNERS), _head_text(root, CODEOWNERS)
    if old == new:
        return []
    if new is None:
        return [ConfigChange(CODEOWNERS, "removed: nothing requires a security review", True)]
    old_lines = {line.strip() for line in (old or "").splitlines()}
    new_lines = {line.strip() for line in new.splitlines()}
    removed = sorted(line for line in old_lines - new_lines if line and not line.startswith("#"))
    if removed:
        return [ConfigChange(CODEOWNERS, f"ownership removed: {'; '.join(removed)}", True)]
    return [ConfigChange(CODEOWNERS, "changed", False)]


def _other_changes(root: Path, base: _Snapshot, handled: set[str]) -> list[ConfigChange]:
    """Any other file of the gate's configuration or code that differs from the base."""
    before = {name for folder in WATCHED_DIRS for name in base.files(folder)}
    after = {name for name in _committable(root) if name.startswith(_folders(WATCHED_DIRS))}
    changes = []
    for name in sorted((before | after) - handled):
        if name.startswith((*NOT_CONFIG, SEMGREP_DIR + "/")):
            continue
        old = base.text(name) if name in before else None
        new = _head_text(root, name) if name in after else None
        if old == new:
            continue
        state = "added" if old is None else "removed" if new is None else "changed"
        changes.append(ConfigChange(name, state, False))
    return changes


def _folders(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(name.rstrip("/") + "/" for name in names)


def _committable(root: Path) -> list[str]:
    """What git could commit (it skips caches and ignored files); every file outside git."""
    names = git.committable_files(root)
    if names is not None:
        return names
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
