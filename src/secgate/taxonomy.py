"""CWE → OWASP Top 10 (2021) categories, for tools that only report a CWE.

The auditor's report groups findings by OWASP category; bandit, zizmor and
detect-secrets give a CWE at best, so this table fills the gap. It is
deliberately short: an unmapped CWE shows as "unmapped", which is honest.
"""

from __future__ import annotations

# Categories the DAST tools' own taxonomies name directly (stages/dast/).
BROKEN_ACCESS_CONTROL = "A01:2021-Broken Access Control"
INJECTION = "A03:2021-Injection"
MISCONFIGURATION = "A05:2021-Security Misconfiguration"
AUTHENTICATION_FAILURES = "A07:2021-Identification and Authentication Failures"
SSRF = "A10:2021-Server-Side Request Forgery"

OWASP_BY_CWE: dict[str, str] = {
    "CWE-22": "A01:2021-Broken Access Control",
    "CWE-284": "A01:2021-Broken Access Control",
    "CWE-377": "A01:2021-Broken Access Control",
    "CWE-732": "A01:2021-Broken Access Control",
    "CWE-862": "A01:2021-Broken Access Control",
    "CWE-259": "A07:2021-Identification and Authentication Failures",
    "CWE-287": "A07:2021-Identification and Authentication Failures",
    "CWE-798": "A07:2021-Identification and Authentication Failures",
    "CWE-295": "A02:2021-Cryptographic Failures",
    "CWE-326": "A02:2021-Cryptographic Failures",
    "CWE-327": "A02:2021-Cryptographic Failures",
    "CWE-328": "A02:2021-Cryptographic Failures",
    "CWE-330": "A02:2021-Cryptographic Failures",
    "CWE-20": "A03:2021-Injection",
    "CWE-78": "A03:2021-Injection",
    "CWE-79": "A03:2021-Injection",
    "CWE-89": "A03:2021-Injection",
    "CWE-94": "A03:2021-Injection",
    "CWE-943": "A03:2021-Injection",
    "CWE-16": "A05:2021-Security Misconfiguration",
    "CWE-489": "A05:2021-Security Misconfiguration",
    "CWE-605": "A05:2021-Security Misconfiguration",
    "CWE-1104": "A06:2021-Vulnerable and Outdated Components",
    "CWE-502": "A08:2021-Software and Data Integrity Failures",
    "CWE-829": "A08:2021-Software and Data Integrity Failures",
    "CWE-532": "A09:2021-Security Logging and Monitoring Failures",
    "CWE-918": "A10:2021-Server-Side Request Forgery",
}


def owasp_for(cwe: str | None) -> str | None:
    """OWASP category for a "CWE-n" id, or None when the table has no entry."""
    return OWASP_BY_CWE.get(cwe) if cwe else None


def short_cwe(text: str) -> str:
    """ "CWE-943: Improper Neutralization ..." → "CWE-943"."""
    return text.split(":", 1)[0].strip()


def short_owasp(text: str) -> str:
    """ "A03:2021 - Injection" → "A03:2021-Injection" (one spelling in reports)."""
    return text.replace(" - ", "-").strip()
