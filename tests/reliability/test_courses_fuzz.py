"""Schema fuzzing of the courses API as the course's own instructor (the general fuzz in test_schemathesis.py
runs as a student outside every course, so it only reaches the 404s): path parameters point at the example
course, its assignment hw1, its student alice and a real problem, so generated bodies reach the real logic
(assignment files written and validated, extensions, overrides, rosters). None may get a 5xx."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from app.core.config import Settings
from app.main import create_app
from app.models import CourseRole, Role, User
from app.services.courses import add_member
from app.services.users import create_user

ROOT = Path(__file__).resolve().parents[2]
# Thousands of generated requests: tens of seconds on an idle machine, so not in `make test-fast`.
pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("GRADAX_FUZZ_EXAMPLES", "25"))
PASSWORD = "correct horse battery"
PATHS = {"course_id": "example", "slug": "hw1", "username": "alice", "problem_id": "nnx-module-basics"}


@pytest.fixture(scope="module")
def course_fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("course-fuzz")
    shutil.copytree(ROOT / "courses" / "example", tmp / "courses" / "example")
    app = create_app(Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'fuzz.db'}", courses_dir=tmp / "courses",
                              secret_key="fuzz-secret-" + "x" * 40, grading_workers=0, submit_rate=0,
                              max_backlog=0, argon2_time_cost=1, argon2_memory_kib=8192))
    with TestClient(app) as client:
        with app.state.session_factory() as session:
            prof = create_user(session=session, username="prof", password=PASSWORD, role=Role.INSTRUCTOR)
            alice = create_user(session=session, username="alice", password=PASSWORD)
            add_member(session, course_id="example", user=prof, role=CourseRole.INSTRUCTOR, source="file")
            add_member(session, course_id="example", user=alice, role=CourseRole.STUDENT, source="roster")
            session.commit()
            assert session.query(User).count() == 2
        token = client.post("/api/v1/auth/token", data={"username": "prof", "password": PASSWORD}).json()
        yield app, {"Authorization": f"Bearer {token['access_token']}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_course_requests_never_get_a_server_error(course_fuzz_app: tuple[FastAPI, dict[str, str]],
                                                         mode: GenerationMode) -> None:
    app, headers = course_fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/v1/courses"):
            continue
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            if mode == GenerationMode.POSITIVE:
                for name, value in PATHS.items():
                    if case.path_parameters and name in case.path_parameters:
                        case.path_parameters[name] = value
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:
            continue
        except Exception as exc:
            failures[operation.label] = str(exc)[:2000]
    assert operations >= 15
    details = "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert not failures, f"server errors in {sorted(failures)}:\n{details}"
