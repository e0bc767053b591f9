"""Attacks at the edge, measured: a legitimate client's success rate and p99 during each.

Starts the whole stack as ``make run`` does (the gateway with its default
limits; the app's own limiter out of the way, it is not what is measured),
then, for each attack, runs the legitimate client (127.0.0.2, one request
every 50 ms) for ``--seconds`` while the attacker (127.0.0.1) attacks, and
prints one line per phase. The baseline phase has no attack; the last phase
sends the slowloris straight to the API's port, which only a local process
can reach: what the gateway spares the API. Nothing here asserts on time.

    PYTHONPATH=tests .venv/bin/python -m perf.edge_attacks            # about 2 min
    PYTHONPATH=tests .venv/bin/python -m perf.edge_attacks --seconds 5
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

from devstack.api import pick_api_port
from devstack.gateway import GatewayConfig, pick_gateway_port
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from edge_support import flood, legit_client, oversized, slow_bodies, slowloris
from support import GENEROUS_RATE_LIMIT

Attack = Callable[[RunningStack, float], str]
READ_TIMEOUT_S = int(GatewayConfig().read_timeout.removesuffix("s"))


def _none(stack: RunningStack, seconds: float) -> str:
    threading.Event().wait(seconds)
    return "-"


def _flood(stack: RunningStack, seconds: float) -> str:
    return str(dict(flood(stack.url, stack.paths.ca_file, duration_s=seconds, threads=8)))


def _slowloris(stack: RunningStack, seconds: float) -> str:
    return slowloris(stack.url, stack.paths.ca_file, connections=300, duration_s=seconds).summary()


def _slow_bodies(stack: RunningStack, seconds: float) -> str:
    return slow_bodies(
        stack.url, stack.paths.ca_file, connections=100, duration_s=seconds
    ).summary()


def _oversized(stack: RunningStack, seconds: float) -> str:
    return str(dict(oversized(stack.url, stack.paths.ca_file, duration_s=seconds)))


def _slowloris_direct(stack: RunningStack, seconds: float) -> str:
    url = stack.api.url
    return slowloris(url, stack.paths.ca_file, connections=300, duration_s=seconds).summary()


PHASES: list[tuple[str, Attack]] = [
    ("no attack (baseline)", _none),
    ("flood, 8 keep-alive threads", _flood),
    ("slowloris, 300 connections", _slowloris),
    ("slow bodies, 100 connections", _slow_bodies),
    ("oversized headers and bodies", _oversized),
    ("slowloris at the API port, no gateway", _slowloris_direct),
]


def measure(stack: RunningStack, seconds: float) -> None:
    """Each phase in turn, printed as soon as it ends."""
    token = tomllib.loads(stack.paths.cli_config.read_text(encoding="utf-8"))["token"]
    print(f"legitimate client (127.0.0.2), {seconds:.0f} s per phase; attacker 127.0.0.1")
    baseline = None
    for label, attack in PHASES:
        with legit_client(stack.url, stack.paths.ca_file, token) as legit:
            what = attack(stack, seconds)
        baseline = baseline or legit.p(99) or 1e-9
        print(f"{legit.line(label)}  p99 x{legit.p(99) / baseline:5.1f}")
        print(f"    attacker saw: {what}")
        if legit.success_rate < 1.0:
            print(f"    legitimate client saw: {dict(legit.statuses)}")
        sys.stdout.flush()
        threading.Event().wait(READ_TIMEOUT_S + 2)  # the previous attack's connections are gone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="eventsvc-edge-") as tmp:
        stack = start_stack(
            StackPaths(Path(tmp) / ".run"),
            api_port=pick_api_port(0),
            gateway=GatewayConfig(),
            gateway_port=pick_gateway_port(0),
            api_env={
                "EVENTSVC_WORKERS": "2",
                "EVENTSVC_RATE_LIMIT_PER_ADDRESS": GENEROUS_RATE_LIMIT,
                "EVENTSVC_RATE_LIMIT_PER_TOKEN": GENEROUS_RATE_LIMIT,
            },
        )
        try:
            measure(stack, args.seconds)
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
