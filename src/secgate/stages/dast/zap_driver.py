"""Drive an OWASP ZAP daemon through its API (zapv2): auth, import OpenAPI, spider, active scan.

This file is run as a script by the scan environment's Python
(``.venv-scan/bin/python src/secgate/stages/dast/zap_driver.py ...``), because
the ``zaproxy`` client library is a scanner dependency and lives in
``.venv-scan`` only. It therefore imports nothing from secgate:
:mod:`secgate.stages.dast.zap` starts it, and reads the alerts JSON it
writes. The ZAP API key comes from the environment (``ZAP_API_KEY``), never
from the command line; so does the target's auth header value
(``SECGATE_ZAP_AUTH_VALUE``, its name in ``--auth-header-name``).

The header reaches every request ZAP sends to the target (the OpenAPI import,
the spider, the active scan) through a replacer rule on REQ_HEADER, limited to
the target's URLs; the rule is removed when the scan ends, however it ends.

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
AUTH_ENV = "SECGATE_ZAP_AUTH_VALUE"
AUTH_RULE = "secgate DAST auth header"


class ScanTimeout(Exception):
    """A ZAP scan was still running when its time budget ran out."""


def _wait(status: Any, scan_id: str, deadline: float, what: str) -> None:
    """Poll a ZAP scan's progress (0..100) until it completes or the deadline passes."""
    while int(status(scan_id)) < 100:
        if time.monotonic() > deadline:
            raise ScanTimeout(f"ZAP {what} did not finish in time")
        time.sleep(POLL_SECONDS)


def scan(
    zap: Any, base_url: str, minutes: float, auth: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Authenticate, import the OpenAPI document, spider and actively scan ``base_url`` only."""
    zap.core.new_session(name=CONTEXT_NAME, overwrite=True)
    in_scope = "^" + re.escape(base_url) + "(/.*)?$"
    if auth is None:
        return _scan(zap, base_url, minutes, in_scope)
    zap.replacer.add_rule(
        description=AUTH_RULE,
        enabled="true",
        matchtype="REQ_HEADER",
        matchregex="false",
        matchstring=auth[0],
        replacement=auth[1],
        url=in_scope,  # the header goes to the target only, never to another host
    )
    try:
        return _scan(zap, base_url, minutes, in_scope)
    finally:
        zap.replacer.remove_rule(AUTH_RULE)


def _scan(zap: Any, base_url: str, minutes: float, in_scope: str) -> list[dict[str, Any]]:
    """Import the OpenAPI document into a context holding only the target; spider; scan."""
    deadline = time.monotonic() + minutes * 60
    context_id = zap.context.new_context(CONTEXT_NAME)
    # The context keeps every ZAP scan inside the one target the stage validated.
    zap.context.include_in_context(CONTEXT_NAME, in_scope)
    zap.openapi.import_url(f"{base_url}/openapi.json", contextid=context_id)
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
    parser.add_argument(
        "--auth-header-name", default="", help=f"header to add; its value in env {AUTH_ENV}"
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
        value = os.environ.get(AUTH_ENV, "")
        auth = (args.auth_header_name, value) if args.auth_header_name and value else None
        alerts = scan(zap, args.target.rstrip("/"), args.minutes, auth)
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
