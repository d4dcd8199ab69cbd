"""The app, a client and two accounts, for any `settings` and `bank` fixtures: shared by the API tests on
SQLite (tests/api/conftest.py) and the same tests on PostgreSQL (tests/service/test_api_postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import register
from app.core.config import Settings
from app.main import create_app
from graders.problem import ProblemBank


@pytest.fixture
def app(settings: Settings, bank: ProblemBank) -> FastAPI:
    return create_app(settings, bank=bank)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def alice(client: TestClient) -> dict[str, str]:
    return register(client, "alice")


@pytest.fixture
def bob(client: TestClient) -> dict[str, str]:
    return register(client, "bob")
