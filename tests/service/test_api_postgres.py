"""The web app's API tests, run again on PostgreSQL: same models, same migrations, same behaviour.

The test functions are imported from tests/api/ unchanged; only the fixtures below differ (a fresh
PostgreSQL database per test instead of a SQLite file). Grading here is in-process, as embedded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api import test_grading
from api.fixtures import alice, app, bob, client  # noqa: F401  (fixtures, found by name)
from api.helpers import make_settings
from api.test_auth import *  # noqa: F403
from api.test_grading import *  # noqa: F403
from api.test_instructor import (  # noqa: F401  (background upload checks; the partial unique index)
    held_check,
    iclient,
    problems_dir,
    teacher,
    test_a_check_whose_server_stopped_reads_as_interrupted,
    test_a_checked_upload_is_followed_on_a_page_that_survives_a_reload,
    test_one_check_of_a_problem_id_at_a_time_and_invalid_files_start_none,
)
from api.test_problems import *  # noqa: F403
from api.test_submissions import *  # noqa: F403
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from graders.executor import Executor
from graders.problem import ProblemBank

# After the imports (test_grading's own `pytestmark` came in with them and is replaced here); the
# real-grading tests keep their `slow` mark.
pytestmark = pytest.mark.service
for _name in dir(test_grading):
    if _name.startswith("test_"):
        globals()[_name] = pytest.mark.slow(getattr(test_grading, _name))


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, data_dir, database_url=pg_url)


@pytest.fixture
def limited_app(tmp_path: Path, data_dir: Path, bank: ProblemBank, pg_url: str) -> FastAPI:
    return create_app(make_settings(tmp_path, data_dir, database_url=pg_url, submit_rate=3), bank=bank)


@pytest.fixture
def grading_app(tmp_path: Path, data_dir: Path, bank: ProblemBank, pg_url: str, warm_pool: Executor) -> FastAPI:
    # Graded in this test process's warm pool (tests/conftest.py), which outlives the app.
    return create_app(make_settings(tmp_path, data_dir, database_url=pg_url, grading_workers=1, pool="warm"),
                      bank=bank, executor=warm_pool)


@pytest.fixture
def iapp(tmp_path: Path, data_dir: Path, problems_dir: Path, pg_url: str) -> FastAPI:  # noqa: F811
    return create_app(make_settings(tmp_path, data_dir, problems_dir=problems_dir, database_url=pg_url))
