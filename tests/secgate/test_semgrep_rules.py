"""Our semgrep rules pass their own annotated tests (``# ruleid:`` / ``# ok:``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from secgate_support import SECURITY, TOOLS_BIN

RULES = SECURITY / "semgrep"


def test_every_rule_has_fix_advice_and_taxonomy() -> None:
    for path in sorted(RULES.glob("*.yml")):
        assert path.with_suffix(".py").is_file(), f"{path.name} has no test file next to it"
        for rule in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            metadata = rule["metadata"]
            assert rule["severity"] in {"ERROR", "WARNING", "INFO"}, rule["id"]
            assert metadata["confidence"] in {"LOW", "MEDIUM", "HIGH"}, rule["id"]
            assert metadata["cwe"], rule["id"]
            assert metadata["owasp"], rule["id"]
            assert "Fix: " in rule["message"], f"{rule['id']}: message must say how to fix"


def test_rule_tests_pass(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SEMGREP_ENABLE_VERSION_CHECK": "0",
        "SEMGREP_SEND_METRICS": "off",
        "SEMGREP_SETTINGS_FILE": str(tmp_path / "settings.yml"),
        "SEMGREP_LOG_FILE": str(tmp_path / "semgrep.log"),
    }
    done = subprocess.run(
        [str(TOOLS_BIN / "semgrep"), "scan", "--test", "--metrics=off", str(RULES)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All tests passed" in done.stdout + done.stderr
