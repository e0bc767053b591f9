"""Fixtures for the secgate tests (helpers live in secgate_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="session", autouse=True)
def no_advisory_data_from_outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests read advisory data only from the checkout's fixture or what they make.

    A developer's SECGATE_ADVISORY_DB or filled cache must not change a test's result,
    and no test may read beside the checkout: the variable is removed and the cache
    is an empty temporary directory.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SECGATE_ADVISORY_DB", raising=False)
        patch.setenv("SECGATE_ADVISORY_CACHE", str(tmp_path_factory.mktemp("advisory-cache")))
        yield
