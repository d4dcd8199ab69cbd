"""The course tests (grade rule with a frozen clock, courses API) again on PostgreSQL: same models, migrations and
behaviour. The test functions are imported unchanged; only `settings` differs (a fresh PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api.course_fixtures import course_app, course_client, courses_dir, people  # noqa: F401  (fixtures)
from api.helpers import make_settings
from api.test_course_scores import *  # noqa: F403
from api.test_courses_api import *  # noqa: F403

from app.core.config import Settings

pytestmark = pytest.mark.service


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, data_dir, database_url=pg_url)
