"""The one place where the grader and its executor are built.

A warm pool plugs in here: give `build_executor` a branch for the new `GRADAX_POOL` value.
"""

from __future__ import annotations

from app.core.config import Settings
from graders.engine import ColdExecutor, Executor, Grader
from graders.problem import ProblemBank


def build_executor(settings: Settings) -> Executor:
    if settings.pool == "cold":
        return ColdExecutor(sandboxed=settings.sandbox != "none")
    raise ValueError(f"GRADAX_POOL={settings.pool!r} is not a known grading pool (known: 'cold')")


def build_grader(settings: Settings, bank: ProblemBank) -> Grader:
    return Grader(bank, settings.grader_settings(), executor=build_executor(settings))
