"""Service fixtures: one real PostgreSQL and one real Redis per test session, a fresh database per test.

In CI (`CI=true`) missing server binaries fail the run loudly; on a developer machine the tests skip
with the reason.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api.helpers import ROOT_PROBLEMS, make_settings

from app.core.config import Settings
from graders.problem import ProblemBank
from service.servers import PostgresServer, RedisServer, ServerUnavailable

_counter = itertools.count()


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unavailable: {exc}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().start()
    except ServerUnavailable as exc:
        _unavailable("PostgreSQL", exc)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer().start()
    except ServerUnavailable as exc:
        _unavailable("Redis", exc)
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return postgres.create_database(f"gradax_{os.getpid()}_{next(_counter)}")


@pytest.fixture(scope="session")
def bank() -> ProblemBank:
    return ProblemBank(ROOT_PROBLEMS)


def queue_settings(tmp_path: Path, data_dir: Path, *, database_url: str, redis_url: str,
                   **overrides: Any) -> Settings:
    """Settings for the server in celery mode, with short leases so dead workers are noticed in seconds."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "grading_backend": "celery",
        "redis_url": redis_url,
        "grading_lease_s": 3.0,
        "sweep_interval_s": 0.5,
        "requeue_after_s": 4.0,
        # The warm pool, as in production; it also keeps grading inside its time limits on a busy machine.
        "pool": "warm",
    }
    values.update(overrides)
    return make_settings(tmp_path, data_dir, **values)


def worker_env(settings: Settings) -> dict[str, str]:
    """The same settings as GRADAX_* variables, for `gradax worker` subprocesses."""
    return {
        "GRADAX_DATABASE_URL": settings.sqlalchemy_url,
        "GRADAX_REDIS_URL": settings.redis_url,
        "GRADAX_DATA_DIR": str(settings.data_dir),
        "GRADAX_PROBLEMS_DIR": str(settings.problems_dir),
        "GRADAX_COURSES_DIR": str(settings.courses_dir),
        "GRADAX_SECRET_KEY": settings.secret_key,
        "GRADAX_GRADING_LEASE_S": str(settings.grading_lease_s),
        "GRADAX_SWEEP_INTERVAL_S": str(settings.sweep_interval_s),
        "GRADAX_REQUEUE_AFTER_S": str(settings.requeue_after_s),
        "GRADAX_POOL": settings.pool,
        "GRADAX_LOG_FORMAT": "json",
    }
