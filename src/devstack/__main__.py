"""``python -m devstack COMMAND``: the local stack for ``make`` (run, run-ha, up, down, status,
token, sign-report, report-key, dast-target).

``run`` stays in the foreground (Ctrl-C stops everything); ``up`` starts the
same runner in the background and returns once the API is ready; ``down``
stops it; ``status`` says whether it runs. State lives in ``.run/`` at the
repo root (``--run-dir`` to change it): pid files, ``state.json`` (no
secret) and the logs.

``run-ha`` is ``run`` for the highly available stack (:mod:`devstack.ha`: a
replica set and several API instances) under ``.run/ha/``, so it can run beside
``make up``; ``down --run-dir .run/ha`` stops one left behind.

``token --scopes tokens:admin,audit:read`` mints an API token with those
scopes on the running stack and writes it 0600 to ``.run/dev-token.toml``
(see :mod:`devstack.devtoken`): how a developer acts as operator or auditor.

``sign-report DIR`` signs a security report bundle's manifest with the running
stack's Vault transit key; ``report-key FILE`` writes that key's public half,
read with the auditor's token (see :mod:`devstack.reports`).

``dast-target`` starts a throwaway stack under ``.run/dast`` for a DAST scan,
prints one JSON line saying where it is and stops when stdin closes (see
:mod:`devstack.dast_target`).

The banner (URLs, CA file, a CLI example) goes to stdout; a failure is one
line on stderr naming the component and its log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from devstack import dast_target
from devstack.daemon import AlreadyUp, RunnerFailed, live_state
from devstack.daemon import down as stack_down
from devstack.daemon import run as stack_run
from devstack.daemon import up as stack_up
from devstack.devtoken import mint_dev_token
from devstack.errors import StackError
from devstack.gateway import gateway_config_from_env
from devstack.ha import DEFAULT_INSTANCES, DEFAULT_MEMBERS, start_ha_stack
from devstack.paths import REPO_ROOT, StackPaths
from devstack.reports import REPORT_KEY, sign_report, write_report_public_key

EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="default .run/ (dast-target: .run/dast/)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "start the stack in the foreground; Ctrl-C stops it"),
        ("up", "start the stack in the background"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--port", type=int, default=None, help="the API's port at the gateway (default 8443)"
        )
    ha = commands.add_parser("run-ha", help="replica set + several API instances, foreground")
    ha.add_argument("--members", type=int, default=DEFAULT_MEMBERS, help="mongod members (3)")
    ha.add_argument("--instances", type=int, default=DEFAULT_INSTANCES, help="API instances (2)")
    ha.add_argument(
        "--port", type=int, default=None, help="the API's port at the gateway (default 8443)"
    )
    commands.add_parser("down", help="stop the background stack")
    commands.add_parser("status", help="show whether the stack runs, and where")
    token = commands.add_parser("token", help="mint an API token on the running stack")
    token.add_argument(
        "--scopes", required=True, help="comma-separated, e.g. tokens:admin,audit:read"
    )
    commands.add_parser("dast-target", help="a throwaway stack for DAST; stops when stdin closes")
    sign = commands.add_parser("sign-report", help="sign a report bundle with the stack's Vault")
    sign.add_argument("report_dir", type=Path, help="e.g. security/reports/latest")
    key = commands.add_parser("report-key", help="write the report-signing public key (auditor)")
    key.add_argument("target", type=Path, help="file to write the public key to")
    args = parser.parse_args(argv)
    paths = StackPaths(_run_dir(args.run_dir, args.command).absolute())
    _log_to(paths)
    try:
        return _dispatch(args.command, paths, args)
    except AlreadyUp as exc:
        _out(f"{exc}\n")
        _out(banner(exc.state))
        return 0
    except (StackError, RunnerFailed) as exc:
        sys.stderr.write(f"devstack: {exc}\n")
        return EXIT_FAILED


def _run_dir(given: Path | None, command: str) -> Path:
    """``.run/`` for make's stack; ``.run/dast/`` for DAST, so ``make up`` and a scan coexist."""
    if given is not None:
        return given
    own_dirs = {"dast-target": "dast", "run-ha": "ha"}
    return REPO_ROOT / ".run" / own_dirs[command] if command in own_dirs else REPO_ROOT / ".run"


def _dispatch(command: str, paths: StackPaths, args: argparse.Namespace) -> int:
    if command == "dast-target":
        return dast_target.serve(paths, announce=_out, wait_for_stop=sys.stdin.buffer.read)
    if command == "run":
        return stack_run(paths, api_port=args.port, on_ready=lambda state: _out(banner(state)))
    if command == "run-ha":
        return stack_run(
            paths,
            on_ready=lambda state: _out(banner(state)),
            start=lambda where: start_ha_stack(
                where,
                members=args.members,
                instances=args.instances,
                gateway=gateway_config_from_env(os.environ),
                gateway_port=args.port,
            ),
        )
    if command == "up":
        _out(banner(stack_up(paths, api_port=args.port)))
        _out("stop it with: make down\n")
        return 0
    if command == "token":
        scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
        config = _shown(mint_dev_token(paths, scopes))
        _out(f"token with {','.join(scopes)} (1 day) written to {config} (0600)\n")
        _out(f"use it with: EVENTSVC_CONFIG={config} .venv/bin/eventsvc ...\n")
        return 0
    if command == "down":
        _out("stack stopped\n" if stack_down(paths) else "the stack was not running\n")
        return 0
    running = live_state(paths)
    if running is None:
        _out("the stack is not running\n")
        return EXIT_NOT_RUNNING
    vault = (str(running["vault_addr"]), Path(running["vault_ca_file"]))
    if command == "sign-report":
        written = sign_report(paths, args.report_dir.absolute(), *vault)
        _out(f"signed: {written} (transit/keys/{REPORT_KEY})\n")
        return 0
    if command == "report-key":
        _out(f"public key: {write_report_public_key(paths, *vault, args.target)}\n")
        return 0
    _out(banner(running))
    return 0


def banner(state: dict[str, Any]) -> str:
    """What a developer needs next: where the API is, what to trust, how to call it."""
    if state.get("status") != "ready":
        return f"the stack is starting (runner pid {state.get('runner_pid')})\n"
    cli_config = _shown(state["cli_config"])
    timings = state.get("timings_s", {})
    return "\n".join(
        [
            "",
            f"eventsvc API   {state['api_url']}",
            f"API docs       {state['docs_url']}",
            *_behind_the_gateway(state),
            f"CA file        {_shown(state['ca_file'])}  (curl --cacert, EVENTSVC_CA_FILE)",
            f"OpenBao        {state['vault_addr']}  (CA {_shown(state['vault_ca_file'])})",
            f"MongoDB        {state['mongodb_hosts']}  (TLS, X.509 {state['mongodb_app_user']})",
            f"logs           {_shown(str(Path(state['logs']['stack']).parent))}/*.log",
            f"started in     {timings.get('total', '?')} s",
            "",
            "try the CLI:",
            f'  EVENTSVC_CONFIG={cli_config} .venv/bin/eventsvc start "my first event"',
            f"  EVENTSVC_CONFIG={cli_config} .venv/bin/eventsvc list",
            "",
        ]
    )


def _behind_the_gateway(state: dict[str, Any]) -> list[str]:
    """Where the API instances are (loopback, reached through the gateway only)."""
    if "gateway_url" not in state:
        return []
    backends = ", ".join(state.get("backend_urls", []))
    logs = _shown(state["logs"]["gateway_access"])
    return [f"behind it      {backends}  (Traefik gateway in front; access log {logs})"]


def _shown(path: str) -> str:
    """A path relative to the current directory when it is below it (shorter to copy)."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def _out(text: str) -> None:
    """The one way to stdout: the banner, or the DAST target's JSON line."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _log_to(paths: StackPaths) -> None:
    """The runner's own log goes to ``stack.log``; the terminal keeps the banner only."""
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    logging.basicConfig(
        filename=paths.stack_log,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    raise SystemExit(main())
