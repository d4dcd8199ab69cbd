"""The app's footing: migrations, SQLite settings, the secret key, start-up recovery, the CLI commands."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import inspect, select, text

from api.helpers import API, PASSWORD, make_settings, register
from app.core.config import Settings
from app.db import make_engine
from app.grading import claims
from app.grading.inprocess_dispatcher import InProcessDispatcher
from app.migrate import alembic_config, upgrade_to_head
from app.models import Attempt, AttemptStatus, User

CODE = "def module_basics_forward(seed, x, features):\n    return x\n"


def test_migrations_create_every_table_and_match_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade_to_head(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"users", "problems", "attempts", "attempt_tests", "progress", "alembic_version"} <= tables
    # `alembic check` fails if the models changed without a migration
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)
    upgrade_to_head(engine)  # idempotent
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app: FastAPI) -> None:
    with app.state.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000


def test_default_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.sqlalchemy_url == f"sqlite:///{(tmp_path / 'data' / 'gradax.db').resolve()}"


def test_secret_key_is_generated_once_with_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.resolved_secret()
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and Settings(data_dir=tmp_path).resolved_secret() == first


def test_placeholder_secret_is_refused_outside_dev(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(data_dir=tmp_path, secret_key="changethis", environment="production")
    assert Settings(data_dir=tmp_path, secret_key="changethis").secret_key == "changethis"


def test_openapi_lists_the_contract_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/problems", "/api/v1/problems/{problem_id}",
                 "/api/v1/submissions", "/api/v1/submissions/{submission_id}"):
        assert path in paths, path
    assert "/" not in paths and "/login" not in paths  # pages stay out of the API schema
    ids = [op["operationId"] for item in paths.values() for op in item.values() if isinstance(op, dict)
           and "operationId" in op]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)  # client generators need unique ids
    assert {"get", "post"} <= set(paths["/lti/login"])  # platforms initiate the LTI login with either


def test_unknown_api_route_is_json_404(client: TestClient) -> None:
    r = client.get(f"{API}/nothing-here")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_problems_removed_from_disk_become_unavailable(tmp_path: Path, data_dir: Path) -> None:
    from app.main import create_app

    problems = tmp_path / "bank" / "problems"
    refs = tmp_path / "bank" / "reference_solutions"
    problems.mkdir(parents=True)
    refs.mkdir()
    root = Path(__file__).resolve().parents[2]
    for name in ("nnx-module-basics", "nnx-linear-bias"):
        (problems / f"{name}.yaml").write_bytes((root / "problems" / f"{name}.yaml").read_bytes())
        module = name.replace("-", "_") + ".py"
        (refs / module).write_bytes((root / "reference_solutions" / module).read_bytes())
    settings = make_settings(tmp_path, data_dir, problems_dir=problems)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"{API}/problems").json()["count"] == 2
    (problems / "nnx-linear-bias.yaml").unlink()
    with TestClient(create_app(settings)) as client:
        body = client.get(f"{API}/problems").json()
        assert [p["id"] for p in body["data"]] == ["nnx-module-basics"]
        headers = register(client, "alice")
        r = client.post(f"{API}/submissions", json={"problem_id": "nnx-linear-bias", "code": CODE}, headers=headers)
        assert r.status_code == 404


def test_startup_recovery_requeues_unfinished_attempts(app: FastAPI, client: TestClient,
                                                       alice: dict[str, str]) -> None:
    """Attempts a crashed process left queued or running are put back in the grading queue."""
    ids = []
    for pid in ("nnx-module-basics", "nnx-linear-bias"):
        r = client.post(f"{API}/submissions", json={"problem_id": pid, "code": CODE}, headers=alice)
        ids.append(r.json()["id"])
    with app.state.session_factory() as session:
        session.get(Attempt, ids[0]).status = AttemptStatus.RUNNING.value  # type: ignore[union-attr]
        session.commit()
    dispatcher = InProcessDispatcher(app.state.session_factory, app.state.grader, workers=1, retries=1)
    assert dispatcher.recover() == 2
    # Both are where the grading threads look: the queued rows due to start (none hidden by the crash).
    assert sorted(claims.eligible(app.state.session_factory, fair=claims.FairShare())) == sorted(ids)
    with app.state.session_factory() as session:
        statuses = session.scalars(select(Attempt.status).order_by(Attempt.id)).all()
    assert statuses == ["queued", "queued"]
    assert dispatcher.sweep().expired == []  # nothing left running to expire


def test_graders_take_attempts_from_the_database_one_per_author(app: FastAPI, client: TestClient,
                                                               alice: dict[str, str], bob: dict[str, str]) -> None:
    """The attempt rows are the queue, so nothing waits on a message that was never sent; an author's second
    attempt waits behind their first instead of in front of someone else's."""
    factory = app.state.session_factory
    ids = [client.post(f"{API}/submissions", json={"problem_id": pid, "code": CODE}, headers=alice).json()["id"]
           for pid in ("nnx-module-basics", "nnx-linear-bias")]
    bobs = client.post(f"{API}/submissions", json={"problem_id": "nnx-module-basics", "code": CODE},
                       headers=bob).json()["id"]
    fair = claims.FairShare()
    first = claims.claim_next(factory, worker="test", lease_s=60, fair=fair)
    assert first is not None and first.attempt_id == ids[0]
    second = claims.claim_next(factory, worker="test", lease_s=60, fair=fair)
    assert second is not None and second.attempt_id == bobs  # alice's second attempt waits behind her first
    assert claims.claim_next(factory, worker="test", lease_s=60, fair=fair) is None
    assert claims.claim(factory, ids[1], worker="test", lease_s=60) is None  # even when asked for by id


def gradax(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "gradax"
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.slow  # `gradax user` runs import the app: seconds each on a busy machine
def test_cli_user_create_makes_an_instructor_who_can_log_in(tmp_path: Path, data_dir: Path) -> None:
    env = {"GRADAX_DATA_DIR": str(tmp_path), "GRADAX_ARGON2_MEMORY_KIB": "8192", "GRADAX_ARGON2_TIME_COST": "1"}
    r = gradax("user", "create", "teacher", "--role", "instructor", "--password-stdin", "--email", "T@Uni.test",
               env=env, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "created instructor 'teacher'" in r.stdout
    r = gradax("user", "create", "teacher2", "--password-stdin", "--email", "t@uni.test", env=env,
               stdin=PASSWORD + "\n")
    assert r.returncode == 1 and "another account has this email address, verified" in r.stderr
    r = gradax("user", "create", "teacher", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert r.returncode == 1 and "taken" in r.stderr
    r = gradax("user", "create", "x", "--password-stdin", env=env, stdin="short\n")
    assert r.returncode == 2
    assert "teacher" in gradax("user", "list", env=env).stdout

    from app.main import create_app

    settings = make_settings(tmp_path, data_dir, database_url="")
    settings = settings.model_copy(update={"data_dir": tmp_path})
    with TestClient(create_app(settings)) as client:
        r = client.post(f"{API}/auth/token", data={"username": "teacher", "password": PASSWORD})
        assert r.status_code == 200
        me = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert me.json()["role"] == "instructor"
        with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
            teacher = session.scalar(select(User).where(User.username == "teacher"))
            assert teacher is not None and (teacher.email, teacher.email_verified) == ("t@uni.test", True)


def test_grading_pool_setting_picks_the_executor(tmp_path: Path) -> None:
    from graders.executor import ColdExecutor, make_executor

    assert Settings(data_dir=tmp_path).pool == "warm"  # the server grades in the warm pool by default
    assert isinstance(make_executor(Settings(data_dir=tmp_path, pool="cold")), ColdExecutor)
    with pytest.raises(ValueError, match="not a known grading pool"):
        make_executor(Settings(data_dir=tmp_path, pool="lukewarm"))
