"""``python -m mutation``: run the configured modules (or some of them), report, judge.

Exit status: 0 when every selected module (``--modules``, default all) has a
current result at or above the threshold, 1 otherwise (also when one was not
run or its result is stale), 2 on a usage or config error. The report lists
every configured module with its status either way.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mutation.config import MutationConfigError, load_config
from mutation.report import save_result, verdicts, write_report
from mutation.run import run_module, with_equivalents

log = logging.getLogger("mutation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("security/mutation.toml"))
    parser.add_argument("--report-dir", type=Path, default=Path("build/mutation"))
    parser.add_argument("--cosmic-ray", type=Path, default=Path(".venv-mutation/bin/cosmic-ray"))
    parser.add_argument(
        "--modules",
        default="",
        help="comma-separated module paths or names to run (default: all); "
        "the report still covers every configured module",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="run nothing, rebuild the report"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    repo_root = Path.cwd()
    try:
        config = load_config(args.config, repo_root)
        selected = (
            [config.module(name.strip()) for name in args.modules.split(",") if name.strip()]
            if args.modules
            else list(config.modules)
        )
    except MutationConfigError as error:
        log.error("%s", error)
        return 2
    if not args.report_only:
        for module in selected:
            log.info("mutating %s with %s", module.path, " ".join(module.tests))
            result = run_module(
                module,
                config,
                repo_root=repo_root,
                work_dir=args.report_dir / module.slug,
                cosmic_ray=args.cosmic_ray.absolute(),
            )
            save_result(args.report_dir, module, result)
            rate = with_equivalents(result, config).kill_rate
            shown = "n/a" if rate is None else f"{rate:.1%}"
            log.info("%s: kill rate %s in %.0f s", module.path, shown, result.seconds)
    found = verdicts(config, repo_root, args.report_dir)
    report = write_report(config, found, args.report_dir)
    for verdict in found:
        log.info("%-32s %s", verdict.module.path, verdict.status)
    log.info("report: %s", report)
    judged = [verdict for verdict in found if verdict.module in selected]
    return 0 if all(verdict.status == "pass" for verdict in judged) else 1
