"""The ``secgate`` command (``python -m secgate``): run the stages, apply the gate, write reports.

Exit codes: 0 the gate passed, 1 the gate failed, 2 the command could not be
used as given (unknown stage, malformed policy or waivers file, a
``--dast-target-command`` that cannot be split into words).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from secgate import (
    advisories,
    bundle,
    changes,
    combine,
    configreview,
    provenance,
    reports,
    signing,
    testresults,
)
from secgate.controls import ControlsError, load_controls, missing_references, replace_table
from secgate.dast_target import parse_command
from secgate.freshness import Acknowledgement, AcknowledgementError, load_acknowledgements
from secgate.gate import GateVerdict, evaluate
from secgate.model import ScanContext, StageResult
from secgate.pipeline import (
    RunInfo,
    enable_progress,
    remember_token,
    run_stages,
    start_run,
    update_latest,
)
from secgate.policy import Policy, PolicyError, load_policy
from secgate.reports.markdown import config_review_markdown
from secgate.reports.summary import (
    SEVERITIES,
    control_verdicts,
    controls_line,
    stage_rows,
    waive_hint,
)
from secgate.stages import STAGE_NAMES
from secgate.waivers import Waiver, WaiverError, load_waivers

EXIT_USAGE = 2


def _stage_list(value: str) -> list[str]:
    stages = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGE_NAMES]
    if unknown or not stages:
        raise click.BadParameter(f"unknown stage(s) {unknown}; known: {','.join(STAGE_NAMES)}")
    return stages


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    return options


def scan_options(func: click.decorators.FC) -> click.decorators.FC:
    """Options shared by ``scan`` and ``run-stage``; paths default to inside --root."""
    decorators = [
        click.option("--root", type=click.Path(path_type=Path, exists=True, file_okay=False),
                     default=Path("."), help="The project tree to scan."),
        click.option("--report-dir", type=click.Path(path_type=Path), default=None,
                     help="Reports base directory [ROOT/security/reports]."),
        click.option("--security-dir", type=click.Path(path_type=Path), default=None,
                     help="Rules and bandit config [ROOT/security]."),
        click.option("--policy", type=click.Path(path_type=Path), default=None,
                     help="[ROOT/security/policy.yml]"),
        click.option("--waivers", type=click.Path(path_type=Path), default=None,
                     help="[ROOT/security/waivers.yml]"),
        click.option("--tools-bin", type=click.Path(path_type=Path), default=Path(".venv-scan/bin"),
                     show_default=True, help="Directory holding the scanner executables."),
        click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
                     help="Stage option, e.g. base_url=https://127.0.0.1:8443 for DAST."),
        click.option("--step-summary", type=click.Path(path_type=Path), default=None,
                     help="Append summary.md here (pass \"$GITHUB_STEP_SUMMARY\" in CI)."),
        click.option("--dast-target-command", metavar="CMD", default=None,
                     help="For the dast stage: run CMD, attack the target it prints, then stop "
                          "it (make passes \"python -m devstack dast-target\")."),
        click.option("--config-base", metavar="REF", default=None,
                     help="Compare the gate's own configuration with git REF (e.g. "
                          "origin/main) and list every relaxation first in the reports."),
        click.option("--test-results", type=click.Path(path_type=Path, dir_okay=False),
                     default=None, help="This run's pytest JUnit XML (make test writes "
                     "build/junit-tests.xml): kept in the bundle, judges the controls."),
        click.option("--controls", type=click.Path(path_type=Path, dir_okay=False),
                     default=None, help="[ROOT/security/controls.yml]"),
        click.option("--previous", type=click.Path(path_type=Path, file_okay=False),
                     default=None, help="A previous run's report directory to compare with "
                     "[the run REPORT_DIR/latest points at]."),
        click.option("-v", "--verbose", is_flag=True, help="Log what each stage does."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@click.group()
def main() -> None:
    """secgate: SAST, SCA, secrets, DAST and config scans behind one merge gate."""


@main.command()
@click.option("--stages", default=",".join(STAGE_NAMES), show_default=True,
              help="Comma-separated stages to run.")  # fmt: skip
@scan_options
def scan(stages: str, **kwargs: object) -> None:
    """Run the stages, apply policy and waivers, write reports; exit 1 if the gate fails."""
    try:
        names = _stage_list(stages)
    except click.BadParameter as exc:
        raise click.UsageError(str(exc)) from exc
    sys.exit(_scan(names, **kwargs))  # type: ignore[arg-type]


@main.command("run-stage")
@click.argument("name", type=click.Choice(STAGE_NAMES))
@scan_options
def run_stage_command(name: str, **kwargs: object) -> None:
    """Run a single stage through the gate (same reports and exit codes as scan)."""
    sys.exit(_scan([name], **kwargs))  # type: ignore[arg-type]


def _scan(
    names: list[str],
    root: Path,
    report_dir: Path | None,
    security_dir: Path | None,
    policy: Path | None,
    waivers: Path | None,
    tools_bin: Path,
    options: tuple[str, ...],
    step_summary: Path | None,
    dast_target_command: str | None,
    config_base: str | None,
    test_results: Path | None,
    controls: Path | None,
    previous: Path | None,
    verbose: bool,
) -> int:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    enable_progress()
    console = Console(highlight=False, soft_wrap=True)
    root = root.absolute()
    security = security_dir or root / "security"
    try:
        rules = GateRules.load(
            policy or security / "policy.yml", waivers or security / "waivers.yml"
        )
        stage_options = _options(options)
        dast_target = parse_command(dast_target_command) if dast_target_command else []
        controls_file = controls or security / "controls.yml"
        gate_controls = load_controls(controls_file) if controls_file.exists() else []
        tests_run = testresults.load(test_results) if test_results else None
    except (PolicyError, WaiverError, AcknowledgementError, click.BadParameter, ValueError) as exc:
        console.print(Text(f"secgate: {exc}", style="bold red"))
        return EXIT_USAGE
    base = (report_dir or root / "security" / "reports").absolute()
    info = start_run(root, base, names, dt.datetime.now(dt.UTC))
    if config_base:
        info.config_review = configreview.review(root, config_base)
    info.controls = gate_controls
    info.test_results, info.test_results_file = tests_run, test_results
    info.provenance = provenance.collect(root)
    last_run = base / "latest"  # still the previous run: update_latest comes after the reports
    previous_dir = previous or (last_run.resolve() if last_run.is_dir() else None)
    ctx = ScanContext(
        root=root,
        report_dir=info.report_dir,
        security_dir=security.absolute(),
        tools_bin=tools_bin.absolute(),
        options=stage_options,
    )
    remember_token(ctx, stage_options.get("auth_header_file"))  # a target given with -o
    results = run_stages(ctx, names, dast_target)
    info.finished_at = dt.datetime.now(dt.UTC)
    verdict = _judge_and_report(info, ctx, results, rules, previous_dir)
    update_latest(base, info.report_dir)
    _finish(console, info, results, verdict, step_summary)
    return verdict.exit_code


@dataclass(frozen=True)
class GateRules:
    """What the gate applies: policy.yml, waivers.yml and its advisory-data acknowledgements."""

    policy: Policy
    waivers: list[Waiver]
    acks: list[Acknowledgement]

    @classmethod
    def load(cls, policy_file: Path, waivers_file: Path) -> GateRules:
        """Read policy.yml and waivers.yml (waivers and acknowledgements); errors name the entry."""
        return cls(
            load_policy(policy_file),
            load_waivers(waivers_file),
            load_acknowledgements(waivers_file),
        )


def _judge_and_report(
    info: RunInfo,
    ctx: ScanContext,
    results: list[StageResult],
    rules: GateRules,
    previous_dir: Path | None,
) -> GateVerdict:
    """Apply the gate, write every report, then check the bundle itself for secrets."""
    today = (info.finished_at or dt.datetime.now(dt.UTC)).date()
    verdict = evaluate(results, rules.policy, rules.waivers, today, rules.acks)
    findings = changes.findings_document(info.run_id, info.stages, verdict)
    info.changes = changes.compare(findings, previous_dir)
    reports.write_all(info, results, verdict, rules.waivers, dt.datetime.now(dt.UTC))
    leaks = bundle.secrets_in_bundle(ctx, ctx.secrets_used)
    if leaks:  # the reports must say so: write them again with the failed verdict
        verdict = verdict.with_bundle_problems(leaks)
        reports.write_all(info, results, verdict, rules.waivers, dt.datetime.now(dt.UTC))
    return verdict


def _finish(
    console: Console,
    info: RunInfo,
    results: list[StageResult],
    verdict: GateVerdict,
    step_summary: Path | None,
) -> None:
    if step_summary is not None:
        with step_summary.open("a", encoding="utf-8") as stream:
            stream.write((info.report_dir / "summary.md").read_text(encoding="utf-8"))
    print_summary(console, info, results, verdict)


@main.command("combine")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.argument(
    "bundles",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path("."),
    help="The checkout the bundles scanned (policy, waivers, controls).",
)
@click.option(
    "--tools-bin",
    type=click.Path(path_type=Path),
    default=Path(".venv-scan/bin"),
    show_default=True,
    help="Scanner executables (the bundle's secret check).",
)
@click.option(
    "--test-results",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="This commit's pytest JUnit XML.",
)
@click.option(
    "--config-base",
    metavar="REF",
    default=None,
    help="Compare the gate's configuration with git REF.",
)
@click.option(
    "--previous",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A previous combined report to diff findings with.",
)
@click.option("--step-summary", type=click.Path(path_type=Path), default=None,
              help="Append summary.md here.")  # fmt: skip
def combine_command(
    out: Path,
    bundles: tuple[Path, ...],
    root: Path,
    tools_bin: Path,
    test_results: Path | None,
    config_base: str | None,
    previous: Path | None,
    step_summary: Path | None,
) -> None:
    """One report for auditors in OUT from the BUNDLES of separate stage runs (CI's stage jobs).

    The gate is applied again to all their stage results together, with this
    checkout's policy and waivers; exit codes as for scan.
    """
    enable_progress()
    console = Console(highlight=False, soft_wrap=True)
    root = root.absolute()
    security = root / "security"
    try:
        rules = GateRules.load(security / "policy.yml", security / "waivers.yml")
        controls_file = security / "controls.yml"
        gate_controls = load_controls(controls_file) if controls_file.exists() else []
        tests_run = testresults.load(test_results) if test_results else None
        gathered = combine.gather([b.absolute() for b in bundles], out.absolute())
    except (PolicyError, WaiverError, AcknowledgementError, ValueError) as exc:
        console.print(Text(f"secgate combine: {exc}", style="bold red"))
        sys.exit(EXIT_USAGE)
    now = dt.datetime.now(dt.UTC)
    stages = [r.stage for r in gathered.results]
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{gathered.commit[:8]}-combined"
    info = RunInfo(run_id, gathered.commit, root, out.absolute(), now, now, stages)
    if config_base:
        info.config_review = configreview.review(root, config_base)
    info.controls, info.provenance = gate_controls, provenance.collect(root)
    info.test_results, info.test_results_file = tests_run, test_results
    ctx = ScanContext(root, info.report_dir, security, tools_bin.absolute())
    verdict = _judge_and_report(info, ctx, gathered.results, rules, previous)
    _finish(console, info, gathered.results, verdict, step_summary)
    sys.exit(verdict.exit_code)


def print_summary(
    console: Console, info: RunInfo, results: list[StageResult], verdict: GateVerdict
) -> None:
    """The console view: configuration relaxations, one table, then what to do about failures."""
    if info.config_review is not None:
        print_config_review(console, info.config_review)
    table = Table(title=f"secgate {info.run_id}")
    for column in ("stage", "tools", *(s.name.lower() for s in SEVERITIES), "verdict", "s"):
        table.add_column(column)
    for row in stage_rows(results, verdict):
        style = "green" if row.verdict == "pass" else "bold red"
        counts = [Text(str(row.counts[s])) for s in SEVERITIES]
        table.add_row(
            Text(row.stage),
            Text(row.tools),
            *counts,
            Text(row.verdict, style=style),
            Text(f"{row.seconds:.1f}"),
        )
    console.print(table)
    if verdict.advisory_data is not None:
        data = verdict.advisory_data
        style = "bold red" if data.problem else ("yellow" if data.accepted_by else "")
        console.print(Text(data.summary(), style=style))
    console.print(Text(controls_line(info, control_verdicts(info, results, verdict))))
    if info.changes is not None:
        console.print(Text(info.changes.summary()))
    for line in info.provenance.lines() if info.provenance else []:
        console.print(Text(line, style="dim"))
    for row in stage_rows(results, verdict):
        for note in row.notes:
            console.print(Text(f"  {row.stage}: {note}", style="dim"))
    for finding in verdict.blocking:
        console.print()
        console.print(
            Text(f"{finding.location}  {finding.tool} {finding.rule_id}", style="bold red")
        )
        console.print(Text(f"  {finding.severity.name.lower()}: {finding.message}"))
        console.print(Text(f"  fix: {finding.help}"))
        console.print(Text("  waive: add to security/waivers.yml:"))
        console.print(Text("    " + waive_hint(finding).replace("\n", "\n    "), style="dim"))
    for waiver in verdict.expired_waivers:
        console.print(Text(f"\nwaiver {waiver.fingerprint} ({waiver.owner}) expired on "
                           f"{waiver.expires}: fix the finding or renew the waiver with a "
                           "new review", style="bold red"))  # fmt: skip
    for waiver in verdict.unused_waivers:
        console.print(Text(f"\nwaiver {waiver.fingerprint} ({waiver.owner}) matched no finding: "
                           "delete it from security/waivers.yml", style="bold red"))  # fmt: skip
    if verdict.advisory_data is not None and verdict.advisory_data.problem:
        console.print(Text(f"\n{verdict.advisory_data.problem}", style="bold red"))
    for problem in [*verdict.acknowledgement_problems, *verdict.bundle_problems]:
        console.print(Text(f"\n{problem}", style="bold red"))
    word = "PASSED" if verdict.passed else "FAILED"
    console.print(Text(f"\ngate {word}", style="bold green" if verdict.passed else "bold red"))
    console.print(Text(f"reports: {info.report_dir}"))


def print_config_review(console: Console, review: configreview.ConfigReview) -> None:
    """Relaxations of the gate's configuration in red, other changes dimmed."""
    style = "bold red" if review.relaxations or review.problem else ""
    console.print(Text(review.headline(), style=style))
    for change in sorted(review.changes, key=lambda c: not c.relaxes):
        console.print(Text(f"  {change.line()}", style="bold red" if change.relaxes else "dim"))
    console.print()


@main.command("config-review")
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path("."),
    help="The project tree under review.",
)
@click.option(
    "--base",
    "base_ref",
    required=True,
    metavar="REF",
    help="git ref of the configuration in force, e.g. origin/main.",
)
@click.option(
    "--step-summary",
    type=click.Path(path_type=Path),
    default=None,
    help='Append the list here (pass "$GITHUB_STEP_SUMMARY" in CI).',
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the comparison as JSON here.")  # fmt: skip
def config_review_command(
    root: Path, base_ref: str, step_summary: Path | None, json_path: Path | None
) -> None:
    """List how the gate's own configuration differs from REF, relaxations first.

    Exit 0 whatever it finds (CODEOWNERS makes the review mandatory; this
    makes it visible); exit 2 when REF cannot be compared.
    """
    review = configreview.review(root.absolute(), base_ref)
    print_config_review(Console(highlight=False, soft_wrap=True), review)
    if step_summary is not None:
        lines = ["## secgate: gate configuration", "", *config_review_markdown(review), ""]
        with step_summary.open("a", encoding="utf-8") as stream:
            stream.write("\n".join(lines))
    if json_path is not None:
        json_path.write_text(json.dumps(review.to_json(), indent=2) + "\n", encoding="utf-8")
    sys.exit(EXIT_USAGE if review.problem else 0)


@main.command("controls")
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path("."),
    help="The project tree (tests and rules are looked up here).",
)
@click.option(
    "--write",
    "document",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Regenerate this document's control table (SECURITY.md).",
)
def controls_command(root: Path, document: Path | None) -> None:
    """Check security/controls.yml: every test and rule it names exists.

    With --write, regenerate SECURITY.md's control table from it. Exit 1 when a
    listed test or rule does not exist, 2 when the file cannot be used.
    """
    try:
        controls = load_controls(root / "security" / "controls.yml")
        if document is not None:
            text = document.read_text(encoding="utf-8")
            document.write_text(replace_table(text, controls), encoding="utf-8")
    except (ControlsError, OSError) as exc:
        click.echo(f"secgate controls: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    problems = missing_references(controls, root.absolute())
    for problem in problems:
        click.echo(f"secgate controls: {problem}", err=True)
    if not problems:
        click.echo(f"secgate controls: {len(controls)} controls, every test and rule exists")
    sys.exit(1 if problems else 0)


@main.command("sign-report")
@click.argument("report_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--vault-addr", required=True, help="https URL of Vault/OpenBao.")
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="File holding a token allowed to sign with the key (0600).",
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="CA bundle for Vault's certificate.",
)
@click.option("--key", default="secgate-report", show_default=True, help="Transit key name.")
@click.option("--mount", default="transit", show_default=True, help="Transit mount.")  # fmt: skip
def sign_report_command(
    report_dir: Path, vault_addr: str, token_file: Path, ca_file: str | None, key: str, mount: str
) -> None:
    """Sign REPORT_DIR's manifest.json with an Ed25519 key in Vault transit (manifest.sig.json)."""
    token = token_file.read_text(encoding="utf-8").strip()
    try:
        written = signing.sign_with_vault_transit(
            report_dir, addr=vault_addr, token=token, ca_file=ca_file, key=key, mount=mount
        )
    except (signing.SigningError, OSError) as exc:
        click.echo(f"secgate sign-report: {exc}", err=True)
        sys.exit(1)
    click.echo(f"secgate sign-report: {written} ({mount}/keys/{key})")


@main.command("verify-report")
@click.argument("report_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The signer's Ed25519 public key (PEM, or base64 as Vault "
    "transit shows it), obtained outside the bundle.",
)
@click.option("--require-signature", is_flag=True,
              help="Fail unless a signature was checked with --public-key.")  # fmt: skip
def verify_report_command(
    report_dir: Path, public_key: Path | None, require_signature: bool
) -> None:
    """Check a report bundle: every file's SHA-256, nothing unlisted, and the signature.

    Exit 0 when it holds, 1 when a file was changed, added or removed or the
    signature does not match (each problem on its own line).
    """
    key = public_key.read_bytes() if public_key is not None else None
    result = signing.verify_report(report_dir, key)
    checked = any("signature checked" in note for note in result.notes)
    problems = list(result.problems)
    if require_signature and not checked:
        problems.append("no signature was checked (--require-signature)")
    for note in result.notes:
        click.echo(f"secgate verify-report: {note}")
    for problem in problems:
        click.echo(f"secgate verify-report: FAIL: {problem}", err=True)
    if not problems:
        click.echo(f"secgate verify-report: {report_dir}: every file matches its manifest")
    sys.exit(1 if problems else 0)


@main.command("advisories")
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path("."),
    help="Relative SECGATE_ADVISORY_DB paths start here.",
)
@click.option(
    "--refresh-after-hours",
    type=click.IntRange(min=0),
    default=None,
    help="Fetch only when the cached copy is missing or older than this; if the "
    "fetch fails, go on with the cached copy (the gate judges its age).",
)
@click.option("--url", default=advisories.PYPA_ARCHIVE_URL, show_default=True,
              help="https URL of a pypa/advisory-database tar.gz archive.")  # fmt: skip
def advisories_command(root: Path, refresh_after_hours: int | None, url: str) -> None:
    """Fetch the current PyPA advisory database into the cache, or say which local copy is used.

    Prints one line. With SECGATE_ADVISORY_DB set nothing is fetched (air-gapped).
    """
    sys.exit(_advisories(root, refresh_after_hours, url, dict(os.environ), dt.datetime.now(dt.UTC)))


def _advisories(
    root: Path, refresh_after_hours: int | None, url: str, env: dict[str, str], now: dt.datetime
) -> int:
    """One line on stdout (success) or stderr (failure); exit 0 or 1."""
    today = now.date()
    named = advisories.named_copy(None, env)
    if named is not None:
        try:
            data = advisories.locate(None, root.absolute(), env)
        except advisories.AdvisoryDataError as exc:
            click.echo(f"secgate advisories: offline: {exc}", err=True)
            return 1
        click.echo(f"secgate advisories: offline: nothing fetched; using the local copy "
                   f"{advisories.ENV_DB}={named[0]}: {data.describe()}, "
                   f"{data.age_days(today)} days old")  # fmt: skip
        return 0
    cache = advisories.cache_dir(env)
    cached = _cached_copy(root, env)
    if refresh_after_hours is not None and cached is not None and cached.fetched_at is not None:
        hours = (now - cached.fetched_at).total_seconds() / 3600
        if hours < refresh_after_hours:
            click.echo(f"secgate advisories: cached copy is {hours:.0f} h old, not fetched "
                       f"again: {cached.describe()}")  # fmt: skip
            return 0
    try:
        data = advisories.fetch_into_cache(cache, now, url)
    except advisories.AdvisoryDataError as exc:
        if refresh_after_hours is not None and cached is not None:
            click.echo(f"secgate advisories: {exc}; going on with the cached copy "
                       f"{cached.describe()} (the gate judges its age)", err=True)  # fmt: skip
            return 0
        click.echo(f"secgate advisories: {exc}. Offline? Set {advisories.ENV_DB}=DIR to a "
                   "local copy of the PyPA advisory database", err=True)  # fmt: skip
        return 1
    click.echo(f"secgate advisories: fetched into {data.path}: {data.describe()}")
    return 0


def _cached_copy(root: Path, env: dict[str, str]) -> advisories.AdvisoryData | None:
    try:
        return advisories.locate(None, root.absolute(), env)
    except advisories.AdvisoryDataError:
        return None


if __name__ == "__main__":
    main()
