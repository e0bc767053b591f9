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
        ("License-Expression: (MIT OR Apache-2.0) AND BSD-3-Clause\n", "allowed"),
        ("License-Expression: (MIT OR GPL-3.0-only) AND GPL-2.0-only\n", "disallowed"),
        ("License-Expression: MIT AND (\n", "unknown"),
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


@pytest.mark.parametrize(
    ("expression", "allowed", "normalised"),
    [
        ("MIT OR Apache-2.0", True, "MIT OR Apache-2.0"),
        ("(Apache-2.0 AND BSD-3-Clause) OR MIT", True, "(Apache-2.0 AND BSD-3-Clause) OR MIT"),
        ("(Apache-2.0 AND GPL-3.0-only) OR MIT", True, "(Apache-2.0 AND GPL-3.0-only) OR MIT"),
        ("(Apache-2.0 AND GPL-3.0-only) OR LGPL-3.0-or-later", False,
         "(Apache-2.0 AND GPL-3.0-only) OR LGPL-3.0-or-later"),
        ("mit", True, "MIT"),  # SPDX ids are case-insensitive; the parser normalises
        # An exception only adds permissions: GPL is not allowed, with or without it ...
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", False,
         "GPL-2.0-or-later WITH Classpath-exception-2.0"),
        # ... an allowed licence stays allowed with one.
        ("Apache-2.0 WITH LLVM-exception", True, "Apache-2.0 WITH LLVM-exception"),
        # OR: one allowed option suffices even beside a licence we cannot identify.
        ("MIT OR LicenseRef-Custom", True, "MIT OR LicenseRef-Custom"),
        # AND: a disallowed part decides; an unknown part leaves it unknown.
        ("LicenseRef-Custom AND GPL-3.0-only", False, "LicenseRef-Custom AND GPL-3.0-only"),
        ("MIT AND LicenseRef-Custom", None, "MIT AND LicenseRef-Custom"),
        ("Some Custom Terms", None, "Some Custom Terms"),
    ],
)  # fmt: skip
def test_spdx_expressions(expression: str, allowed: bool | None, normalised: str) -> None:
    judged = licenses.judge(expression, POLICY)
    assert (judged.allowed, judged.normalised) == (allowed, normalised)
    if allowed is None:
        assert judged.detail == "not SPDX: " + expression.split(" AND ")[-1]


def test_exception_listed_as_a_whole_is_allowed() -> None:
    policy = licenses.LicensePolicy(
        frozenset({"GPL-2.0-or-later WITH Classpath-exception-2.0"}), {}
    )
    judged = licenses.judge("GPL-2.0-or-later WITH Classpath-exception-2.0", policy)
    assert judged.allowed is True
    assert licenses.judge("GPL-2.0-or-later", policy).allowed is False


@pytest.mark.parametrize(
    "expression",
    ["MIT AND (", "MIT OR OR Apache-2.0", "MIT WITH Apache-2.0", "Classpath-exception-2.0",
     "License :: Other/Proprietary License", "MIT License", ""],
)  # fmt: skip
def test_unparseable_expression_is_unknown_with_the_reason(expression: str) -> None:
    judged = licenses.judge(expression, POLICY)
    assert judged.allowed is None
    assert judged.detail.startswith(("not an SPDX expression: ", "empty licence expression"))


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


@pytest.mark.parametrize(
    "entry", ["allowed: [MIT, Apache2.0]", "allowed: [MIT]\naliases: {X: BSD3}"]
)
def test_allow_list_entries_must_be_spdx(tmp_path: Path, entry: str) -> None:
    """A misspelt identifier would silently match nothing: refused with its name."""
    (tmp_path / "licenses.yml").write_text(entry + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"not SPDX licence expressions: (Apache2\.0|BSD3)$"):
        licenses.load_policy(tmp_path / "licenses.yml")


def test_allow_list_may_name_a_licence_ref_and_a_with_exception(tmp_path: Path) -> None:
    text = "allowed: [MIT, LicenseRef-Internal, GPL-2.0-or-later WITH Classpath-exception-2.0]\n"
    (tmp_path / "licenses.yml").write_text(text, encoding="utf-8")
    assert len(licenses.load_policy(tmp_path / "licenses.yml").allowed) == 3
