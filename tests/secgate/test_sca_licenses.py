"""Licence allow-list decisions (secgate.licenses) on real dist-info metadata files."""

from __future__ import annotations

from pathlib import Path

import pytest

from secgate import licenses

REPO = Path(__file__).resolve().parents[2]
POLICY = licenses.LicensePolicy(
    allowed=frozenset({"MIT", "Apache-2.0", "BSD-3-Clause"}),
    aliases={"MIT License": "MIT", "License :: OSI Approved :: MIT License": "MIT"},
)


def fake_venv(root: Path, metadata: dict[str, str]) -> Path:
    """A venv layout holding one ``<name>-1.0.dist-info/METADATA`` per entry."""
    site = root / "lib" / "python3.11" / "site-packages"
    for name, extra in metadata.items():
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        text = f"Metadata-Version: 2.4\nName: {name}\nVersion: 1.0\n{extra}"
        (info / "METADATA").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("field", "status"),
    [
        ("License-Expression: Apache-2.0 OR GPL-3.0-only\n", "allowed"),
        ("License-Expression: MIT AND GPL-3.0-only\n", "disallowed"),
        ("License-Expression: GPL-3.0-only\n", "disallowed"),
        ("License-Expression: (MIT OR Apache-2.0) AND BSD-3-Clause\n", "unknown"),
        ("License: MIT License\n", "allowed"),
        ("License: Some Custom Terms\n", "unknown"),
        ("Classifier: License :: OSI Approved :: MIT License\n", "allowed"),
        ("Classifier: License :: Other/Proprietary License\n", "unknown"),
        ("", "unknown"),
    ],
)
def test_verdicts(tmp_path: Path, field: str, status: str) -> None:
    dists = licenses.installed_distributions(fake_venv(tmp_path, {"demo": field}))
    [verdict] = licenses.check({"demo": "1.0"}, dists, POLICY)
    assert verdict.status == status


def test_expression_wins_over_free_text_and_classifiers(tmp_path: Path) -> None:
    field = (
        "License-Expression: GPL-3.0-only\nLicense: MIT License\n"
        "Classifier: License :: OSI Approved :: MIT License\n"
    )
    dists = licenses.installed_distributions(fake_venv(tmp_path, {"demo": field}))
    [verdict] = licenses.check({"demo": "1.0"}, dists, POLICY)
    assert (verdict.source, verdict.status) == ("License-Expression", "disallowed")


def test_installed_version_must_be_the_locked_one(tmp_path: Path) -> None:
    dists = licenses.installed_distributions(
        fake_venv(tmp_path, {"demo": "License: MIT License\n"})
    )
    [verdict] = licenses.check({"demo": "2.0"}, dists, POLICY)
    assert verdict.status == "version-mismatch"


def test_not_installed_is_unknown(tmp_path: Path) -> None:
    dists = licenses.installed_distributions(fake_venv(tmp_path, {"other": ""}))
    [verdict] = licenses.check({"demo": "1.0"}, dists, POLICY)
    assert (verdict.source, verdict.status) == ("not installed", "unknown")


def test_project_allow_list_loads() -> None:
    policy = licenses.load_policy(REPO / "security" / "licenses.yml")
    assert "MIT" in policy.allowed
    assert policy.aliases["License :: OSI Approved :: BSD License"] == "BSD-3-Clause"


def test_empty_allow_list_is_refused(tmp_path: Path) -> None:
    (tmp_path / "licenses.yml").write_text("allowed: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="non-empty"):
        licenses.load_policy(tmp_path / "licenses.yml")
