"""wapiti.xml: wapiti's findings in wapiti's own XML layout, for DefectDojo's "Wapiti Scan".

secgate runs wapiti with ``-f json`` (the JSON report is what secgate parses,
and wapiti writes one format per run). DefectDojo's wapiti parser reads XML
only, so the same report is written again in the layout of wapiti's XML
report: ``report/report_infos/info[@name="target"]``, then per category
``vulnerabilities/vulnerability[@name]`` with ``description``, ``solution``,
``references/reference/{title,url}`` and ``entries/entry/{method, path,
level, parameter, info, http_request, curl_command}`` (anomalies likewise).
Nothing is parsed here: ElementTree only writes.

A request's ``Authorization`` and ``Cookie`` header values are replaced, so
the file can travel with the evidence.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # writing only: no untrusted XML is parsed here
from pathlib import Path
from typing import Any

REDACTED = "[redacted by secgate]"
_SECRET_HEADERS = re.compile(r"(?im)^((?:authorization|cookie|proxy-authorization):[ \t]*).*$")
ENTRY_FIELDS = ("method", "path", "level", "parameter", "info", "http_request", "curl_command")


def write(report: dict[str, Any], path: Path) -> Path:
    """Write ``report`` (wapiti's JSON report, as loaded) as wapiti XML at ``path``."""
    root = ET.Element("report", {"type": "security"})
    infos = ET.SubElement(root, "report_infos")
    for name, value in sorted((report.get("infos") or {}).items()):
        if isinstance(value, str | int | float):
            ET.SubElement(infos, "info", {"name": str(name)}).text = str(value)
    classifications = report.get("classifications") or {}
    for section, element in (("vulnerabilities", "vulnerability"), ("anomalies", "anomaly")):
        container = ET.SubElement(root, section)
        for category, entries in sorted((report.get(section) or {}).items()):
            about = classifications.get(category) or {}
            _category(container, element, str(category), about, entries or [])
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _category(
    container: ET.Element, element: str, name: str, about: dict[str, Any], entries: list[Any]
) -> None:
    node = ET.SubElement(container, element, {"name": name})
    ET.SubElement(node, "description").text = str(about.get("desc", ""))
    ET.SubElement(node, "solution").text = str(about.get("sol", ""))
    references = ET.SubElement(node, "references")
    for title, url in (about.get("ref") or {}).items():
        reference = ET.SubElement(references, "reference")
        ET.SubElement(reference, "title").text = str(title)
        ET.SubElement(reference, "url").text = str(url)
    listed = ET.SubElement(node, "entries")
    for entry in entries:
        item = ET.SubElement(listed, "entry")
        for field in ENTRY_FIELDS:
            value = entry.get(field, "") if isinstance(entry, dict) else ""
            ET.SubElement(item, field).text = _redact(str(value if value is not None else ""))


def _redact(text: str) -> str:
    return _SECRET_HEADERS.sub(lambda m: m.group(1) + REDACTED, text)
