"""Where each tool documents a rule: the ``helpUri`` of every SARIF rule secgate writes.

A reviewer who opens an alert in GitHub, SonarQube or DefectDojo should land on
the page that explains that rule. The stage's own link wins (bandit's
``more_info``, a semgrep rule's ``metadata.references``: :attr:`Finding.help_uri`);
otherwise each tool's documented URL pattern below applies; otherwise the
CWE's page, else the OWASP Top 10. Every URL is https.
"""

from __future__ import annotations

from collections.abc import Callable

from secgate.model import Finding

BANDIT_DOCS = "https://bandit.readthedocs.io/en/latest/"
OWASP_TOP10 = "https://owasp.org/Top10/"


def _bandit(rule_id: str) -> str:
    """``B106-hardcoded_password_funcarg`` → its plugin page; B3xx/B4xx are blacklist pages."""
    test_id, _, name = rule_id.partition("-")
    if test_id.startswith("B3"):
        return f"{BANDIT_DOCS}blacklists/blacklist_calls.html"
    if test_id.startswith("B4"):
        return f"{BANDIT_DOCS}blacklists/blacklist_imports.html"
    return f"{BANDIT_DOCS}plugins/{test_id.lower()}_{name}.html"


def _after_slash(rule_id: str) -> str:
    """``zap/10038`` → ``10038`` (the DAST adapters prefix their tool)."""
    return rule_id.rsplit("/", 1)[-1]


# tool → URL of one rule's documentation, from its rule id.
BY_TOOL: dict[str, Callable[[str], str]] = {
    "bandit": _bandit,
    "zizmor": lambda rule: f"https://docs.zizmor.sh/audits/#{rule}",
    "hadolint": lambda rule: (
        f"https://www.shellcheck.net/wiki/{rule}"
        if rule.startswith("SC")
        else f"https://github.com/hadolint/hadolint/wiki/{rule}"
    ),
    "check-jsonschema": lambda rule: "https://check-jsonschema.readthedocs.io/en/stable/",
    "detect-secrets": lambda rule: (
        "https://github.com/Yelp/detect-secrets/blob/master/docs/audit.md"
    ),
    "osv-offline": lambda rule: f"https://osv.dev/vulnerability/{rule}",
    "pip-audit": lambda rule: f"https://osv.dev/vulnerability/{rule}",
    "licenses": lambda rule: "https://spdx.org/licenses/",
    "zap": lambda rule: f"https://www.zaproxy.org/docs/alerts/{_after_slash(rule)}/",
    "wapiti": lambda rule: "https://wapiti-scanner.github.io/",
    "schemathesis": lambda rule: "https://schemathesis.readthedocs.io/en/stable/",
}


def cwe_uri(cwe: str) -> str:
    """``CWE-943`` → MITRE's definition page."""
    return f"https://cwe.mitre.org/data/definitions/{cwe.removeprefix('CWE-')}.html"


def help_uri(finding: Finding) -> str:
    """The page that documents ``finding``'s rule (never empty)."""
    if finding.help_uri and finding.help_uri.startswith("https://"):
        return finding.help_uri
    by_tool = BY_TOOL.get(finding.tool)
    if by_tool is not None and finding.rule_id != "scan-error":
        return by_tool(finding.rule_id)
    if finding.cwe:
        return cwe_uri(finding.cwe)
    return OWASP_TOP10
