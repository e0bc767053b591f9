"""Drive an OWASP ZAP daemon through its API (zapv2): import OpenAPI, spider, active scan.

This file is run as a script by the scan environment's Python
(``.venv-scan/bin/python src/secgate/stages/dast/zap_driver.py ...``), because
the ``zaproxy`` client library is a scanner dependency and lives in
``.venv-scan`` only. It therefore imports nothing from secgate:
:mod:`secgate.stages.dast.zap` starts it, and reads the alerts JSON it
writes. The ZAP API key comes from the environment (``ZAP_API_KEY``), never
from the command line.

Exit codes: 0 scan finished, 3 no ZAP daemon reachable at the API URL,
4 the scan did not finish in time, 2 anything else (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("secgate.stages.dast.zap_driver")

EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4
POLL_SECONDS = 2.0
CONTEXT_NAME = "secgate"


class ScanTimeout(Exception):
    """A ZAP scan was still running when its time budget ran out."""


def _wait(status: Any, scan_id: str, deadline: float, what: str) -> None:
    """Poll a ZAP scan's progress (0..100) until it completes or the deadline passes."""
    while int(status(scan_id)) < 100:
        if time.monotonic() > deadline:
            raise ScanTimeout(f"ZAP {what} did not finish in time")
        time.sleep(POLL_SECONDS)


def scan(zap: Any, base_url: str, minutes: float) -> list[dict[str, Any]]:
    """Import the OpenAPI document, spider and actively scan ``base_url`` only."""
    deadline = time.monotonic() + minutes * 60
    zap.core.new_session(name=CONTEXT_NAME, overwrite=True)
    context_id = zap.context.new_context(CONTEXT_NAME)
    # The context keeps every ZAP scan inside the one target the stage validated.
    zap.context.include_in_context(CONTEXT_NAME, "^" + re.escape(base_url) + "(/.*)?$")
    zap.openapi.import_url(f"{base_url}/openapi.json")
    spider_id = zap.spider.scan(url=base_url, contextname=CONTEXT_NAME, subtreeonly=True)
    _wait(zap.spider.status, spider_id, deadline, "spider")
    ascan_id = zap.ascan.scan(url=base_url, recurse=True, inscopeonly=True, contextid=context_id)
    try:
        _wait(zap.ascan.status, ascan_id, deadline, "active scan")
    except ScanTimeout:
        zap.ascan.stop(ascan_id)
        raise
    alerts: list[dict[str, Any]] = zap.core.alerts(baseurl=base_url)
    return alerts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-url", required=True, help="ZAP API, e.g. http://127.0.0.1:8090")
    parser.add_argument(
        "--target", required=True, help="base URL to scan (validated by the caller)"
    )
    parser.add_argument("--alerts", type=Path, required=True, help="where to write alerts JSON")
    parser.add_argument(
        "--xml-report", type=Path, required=True, help="where to write ZAP's XML report"
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="time budget for the whole scan"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import requests  # in .venv-scan as a dependency of zaproxy
    from zapv2 import ZAPv2  # type: ignore[import-not-found, import-untyped, unused-ignore]

    zap = ZAPv2(
        apikey=os.environ.get("ZAP_API_KEY") or None,
        proxies={"http": args.api_url, "https": args.api_url},
    )
    try:
        version = str(zap.core.version)
    except requests.exceptions.RequestException as exc:
        log.error("no ZAP daemon at %s: %s", args.api_url, exc)
        return EXIT_UNREACHABLE
    try:
        alerts = scan(zap, args.target.rstrip("/"), args.minutes)
    except ScanTimeout as exc:
        log.error("%s", exc)
        return EXIT_TIMEOUT
    args.xml_report.write_text(str(zap.core.xmlreport()), encoding="utf-8")
    document = {"zap_version": version, "target": args.target, "alerts": alerts}
    args.alerts.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log.info("ZAP %s: %d alerts for %s", version, len(alerts), args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
