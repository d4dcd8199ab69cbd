"""API test fixtures: a fresh SQLite file per test, the real app, and accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import ROOT_PROBLEMS, make_settings, register
from app.core.config import Settings
from app.main import create_app
from graders.problem import ProblemBank


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path) -> Settings:
    return make_settings(tmp_path, data_dir)


@pytest.fixture(scope="session")
def bank() -> ProblemBank:
    """Parsing every problem file takes seconds on a busy machine; the bank is read-only, so share it."""
    return ProblemBank(ROOT_PROBLEMS)


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
