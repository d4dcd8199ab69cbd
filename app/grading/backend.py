"""The one place where the grader and its executor are built (`GRADAX_POOL` picks the executor)."""

from __future__ import annotations

from app.core.config import Settings
from graders.engine import ColdExecutor, Executor, Grader
from graders.problem import ProblemBank


def build_executor(settings: Settings) -> Executor:
    if settings.pool == "cold":
        return ColdExecutor(sandboxed=settings.sandbox != "none")
    if settings.pool == "warm":
        from graders.pool import PoolSettings, make_executor

        return make_executor(settings.grader_settings(), PoolSettings(pool="warm"))
    raise ValueError(f"GRADAX_POOL={settings.pool!r} is not a known grading pool (known: 'cold', 'warm')")


def build_grader(settings: Settings, bank: ProblemBank) -> Grader:
    return Grader(bank, settings.grader_settings(), executor=build_executor(settings))


def close_grader(grader: Grader) -> None:
    """Stop what the executor keeps running (a warm pool's zygote and children)."""
    close = getattr(grader.executor, "close", None)
    if callable(close):
        close()
