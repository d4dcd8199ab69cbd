"""Migration test fixtures: the problem bank (read-only, shared), and a database at an older revision."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from api.helpers import ROOT_PROBLEMS

from app.db import make_engine
from app.migrate import alembic_config
from graders.problem import ProblemBank


def database_at(tmp_path: Path, revision: str) -> sa.Engine:
    """A fresh SQLite database migrated up to `revision` (then fill it as that revision's code would, and upgrade)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config()
    with engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return engine


@pytest.fixture(scope="session")
def bank() -> ProblemBank:
    return ProblemBank(ROOT_PROBLEMS)
