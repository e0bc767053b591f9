"""The stage registry: one module (or package) per stage, each exposing ``run(ctx) -> ScanOutput``.

Adding a stage means adding a module here and its name to :data:`STAGE_NAMES`.
A stage returns what its tools found and what could not finish
(``ScanOutput.errors``); it may also raise ``ToolMissing``/``ToolFailed``
when nothing could run at all. :func:`secgate.pipeline.run_stage` is the
only caller of a stage's ``run``: it turns errors, a crash or a missing tool
into a stage that did not run, which the gate fails; a broken scanner must
never look like a clean scan.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from secgate.model import ScanContext, ScanOutput

STAGE_NAMES: tuple[str, ...] = ("sast", "sca", "secrets", "dast", "config")
STATIC_STAGES: tuple[str, ...] = ("sast", "sca", "secrets", "config")

Stage = Callable[[ScanContext], ScanOutput]


class UnknownStage(ValueError):
    """A stage name that is not in the registry."""


def load_stage(name: str) -> Stage:
    """The ``run`` function of stage ``name``."""
    if name not in STAGE_NAMES:
        raise UnknownStage(f"unknown stage {name!r}; known: {', '.join(STAGE_NAMES)}")
    module = importlib.import_module(f"secgate.stages.{name}")
    return cast(Stage, module.run)
