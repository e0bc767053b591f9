"""The stage registry: one module per stage, each exposing ``run(ctx) -> StageResult``.

Adding a stage means adding a module here and its name to :data:`STAGE_NAMES`.
:func:`run_stage` is the only caller of a stage's ``run``: it turns a crash or
a missing tool into a stage that did not run, which the gate fails; a broken
scanner must never look like a clean scan.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import cast

from secgate.model import ScanContext, StageResult
from secgate.tools import ToolFailed, ToolMissing

logger = logging.getLogger(__name__)

STAGE_NAMES: tuple[str, ...] = ("sast", "sca", "secrets", "dast", "config")
STATIC_STAGES: tuple[str, ...] = ("sast", "sca", "secrets", "config")

StageRunner = Callable[[ScanContext], StageResult]


class UnknownStage(ValueError):
    """A stage name that is not in the registry."""


def load_stage(name: str) -> StageRunner:
    """The ``run`` function of stage ``name``."""
    if name not in STAGE_NAMES:
        raise UnknownStage(f"unknown stage {name!r}; known: {', '.join(STAGE_NAMES)}")
    module = importlib.import_module(f"secgate.stages.{name}")
    return cast(StageRunner, module.run)


def run_stage(name: str, ctx: ScanContext) -> StageResult:
    """Run one stage; any failure becomes ``StageResult(ran=False, error=...)``."""
    started = time.monotonic()
    try:
        result = load_stage(name)(ctx)
    except (ToolMissing, ToolFailed) as exc:
        result = StageResult(stage=name, ran=False, error=str(exc))
    except Exception as exc:  # a crashing stage must fail the gate, not the whole run
        logger.exception("stage %s crashed", name)
        result = StageResult(stage=name, ran=False, error=f"stage crashed: {exc!r}")
    result.seconds = time.monotonic() - started
    return result
