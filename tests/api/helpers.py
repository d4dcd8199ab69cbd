"""Helpers for API tests: settings for a per-test database, accounts, waiting for grading."""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app.core.config import Settings
from app.migrate import upgrade_to_head
from app.models import Role
from app.services.users import create_user

API = "/api/v1"
ROOT_PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    """The CSRF token of a server-rendered page's form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def make_settings(tmp_path: Path, data_dir: Path, **overrides: Any) -> Settings:
    """Caches live in the shared data dir (reference outputs computed once per run); the database is per test."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{tmp_path / 'test.db'}",
        "secret_key": "test-secret-" + "x" * 40,
        "grading_workers": 0,  # most tests check what the API stores, not grading
        "submit_rate": 0,
        # Tests register many accounts from one address; the log in limits have tests of their own.
        "auth_rate_per_client": 0,
        "auth_rate_per_username": 0,
        # Real-grading API tests start one app each: a zygote per app would cost more than it saves.
        "pool": "cold",
        # The production argon2 cost (64 MiB, 3 passes) dominates test time on 2 shared cores.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
    }
    values.update(overrides)
    if "database_url" not in overrides and not (tmp_path / "test.db").exists():
        # A copy of a database migrated once per test process: the app's start then finds it at the newest revision
        # (~3 ms) instead of migrating a fresh file (60-100 ms of a core, ~170 apps a run). Migrations have tests of
        # their own (tests/migrations).
        shutil.copyfile(_migrated_template(), tmp_path / "test.db")
    return Settings(**values)


@functools.cache
def _migrated_template() -> Path:
    """An SQLite file at the newest schema revision, made once per test process (removed at its exit)."""
    directory = Path(tempfile.mkdtemp(prefix="gradax-template-db-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()  # no connection left open: the file is whole on disk before it is copied
    return path


def register(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Register through the API and return bearer headers for the new account."""
    r = client.post(f"{API}/auth/register", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    return login(client, username, password)


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post(f"{API}/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def make_user(app: FastAPI, username: str, role: Role) -> None:
    with app.state.session_factory() as session:
        create_user(session=session, username=username, password=PASSWORD, role=role)


def wait_done(client: TestClient, attempt_id: int, headers: dict[str, str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A long poll, as the browser does: answered the moment the result is stored.
        r = client.get(f"{API}/submissions/{attempt_id}", params={"wait": 10}, headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] == "done":
            return body
    raise AssertionError(f"attempt {attempt_id} not graded within {timeout} s")

