"""The course tests (grade rule with a frozen clock, courses API) again on PostgreSQL: same models, migrations and
behaviour. The test functions are imported unchanged; only `settings` differs (a fresh PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api.course_fixtures import course_app, course_client, courses_dir, people  # noqa: F401  (fixtures)
from api.helpers import make_settings
from api.test_course_scores import *  # noqa: F403
from api.test_courses_api import *  # noqa: F403
from migrations.test_upgrade_from_main import check_upgrade, old_tree  # noqa: F401  (old_tree: a fixture)

from app.core.config import Settings
from graders.problem import ProblemBank

pytestmark = pytest.mark.service


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, data_dir, database_url=pg_url)


def test_upgrade_keeps_every_attempt_postgres(old_tree: Path, tmp_path: Path, data_dir: Path,  # noqa: F811
                                              bank: ProblemBank,
                                              pg_url: str) -> None:
    check_upgrade(old_tree, pg_url, tmp_path, data_dir, bank)
