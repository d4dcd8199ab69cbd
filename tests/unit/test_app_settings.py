"""Defaults that depend on each other in the server's settings."""

from __future__ import annotations

from app.core.config import Settings


def test_grading_threads_follow_the_pool() -> None:
    assert Settings(pool="warm").grading_workers == 4
    assert Settings(pool="cold").grading_workers == 2
    assert Settings(pool="warm", grading_workers=0).grading_workers == 0  # external workers only
    assert Settings(pool="cold", grading_workers=3).grading_workers == 3
