"""API test fixtures: a fresh SQLite file per test, the real app, and accounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.course_fixtures import course_app, course_client, courses_dir, people  # noqa: F401  (fixtures)
from api.fixtures import alice, app, bob, client  # noqa: F401  (fixtures, found by name)
from api.helpers import ROOT_PROBLEMS, make_settings
from app.core.config import Settings
from graders.problem import ProblemBank


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path) -> Settings:
    return make_settings(tmp_path, data_dir)


@pytest.fixture(scope="session")
def bank() -> ProblemBank:
    """Parsing every problem file takes seconds on a busy machine; the bank is read-only, so share it."""
    return ProblemBank(ROOT_PROBLEMS)
