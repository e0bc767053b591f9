"""DAST stage: attack the project's own running server on 127.0.0.1 over verified TLS.

Four tools, one target, all given the auth header and the OpenAPI document:

- schemathesis fuzzes every operation of ``<base_url>/openapi.json`` (all checks:
  5xx, schema and status-code conformance, negative data, auth, undocumented
  methods...), and every response it recorded goes through the passive checks
  (:mod:`.passive`: security headers, cookies, content types, leaking errors);
- wapiti imports the same document (every operation) and injects payloads
  (XSS, SQL, command, file, ...);
- the probe (:mod:`.probe`, secgate's own) requests common undocumented routes:
  an answer (2xx) or a crash (5xx) is a finding, and its answers are checked
  passively too;
- OWASP ZAP (imports the OpenAPI document, the auth header as a replacer rule,
  spiders, active scan) when a ZAP daemon is reachable at env ``ZAP_API_URL``;
  otherwise the stage says "ZAP: not run" in its notes and metadata, never that
  ZAP found nothing.

Each tool says in the stage's metadata how much it covered (operations
reached, requests, authenticated or not); a tool that reached no operation
is an error ("ineffective"), not a pass.

The stage does not start the service: the caller passes ``base_url`` (and
``ca_file``, the CA that signed the server certificate), or secgate reads them
from a target command (:mod:`secgate.dast_target`). What may be attacked is
decided in :mod:`.target`: ``https://127.0.0.1[:port]`` only, TLS always
verified against ``ca_file``. Each tool is one module (:mod:`.schemathesis`,
:mod:`.wapiti`, :mod:`.zap`) with the same ``scan(ctx, target, out) ->
ScanOutput``; this module picks the tools and combines what they return.

Options (``ctx.options``, all strings): ``base_url``, ``ca_file`` (required);
``auth_header`` ("Name: value") or ``auth_header_file`` (a file holding it, so
the token is on no secgate command line; ``--dast-target-command`` passes one);
``dast_tools`` (default "schemathesis,wapiti,probe,zap": a tool left out is noted,
not silently skipped);
``seed`` ("1"), ``max_examples`` ("50"), ``max_time`` (schemathesis budget,
"120" s), ``phases`` ("examples,coverage,fuzzing,stateful"), ``request_timeout``
("10" s), ``wapiti_modules`` (see :data:`.wapiti.DEFAULT_MODULES`),
``wapiti_max_scan_time`` ("120" s), ``zap_minutes`` ("10"), ``zap_required``
("false"; "true" turns "ZAP not run" into a stage error, as in the CI ZAP job).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from secgate.model import ScanContext, ScanOutput, combine
from secgate.stages.dast import probe, schemathesis, wapiti, zap
from secgate.stages.dast.target import STAGE, Target, TargetRefused, target_from

DEFAULT_TOOLS = "schemathesis,wapiti,probe,zap"
TOOLS: dict[str, Callable[[ScanContext, Target, Path], ScanOutput]] = {
    "schemathesis": schemathesis.scan,
    "wapiti": wapiti.scan,
    "probe": probe.scan,
    "zap": zap.scan,
}


def run(ctx: ScanContext) -> ScanOutput:
    """Run the selected DAST tools against ``base_url``; every tool's failure is an error."""
    try:
        target = target_from(ctx)
    except TargetRefused as exc:
        return ScanOutput(errors=[str(exc)])
    out = ctx.report_dir / STAGE
    out.mkdir(parents=True, exist_ok=True)
    option = ctx.options.get("dast_tools", DEFAULT_TOOLS)
    selected = [name.strip() for name in option.split(",") if name.strip()]
    unknown = [f"unknown DAST tool {name!r}" for name in selected if name not in TOOLS]
    outputs = [ScanOutput(metadata={"target": target.base_url}, errors=unknown)]
    for name, scan in TOOLS.items():
        if name in selected:
            outputs.append(scan(ctx, target, out))
        else:
            outputs.append(ScanOutput(notes=[f"{name}: not run (left out by option dast_tools)"]))
    return combine(outputs)
