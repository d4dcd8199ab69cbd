"""Health, readiness, metrics and JSON logs, on the embedded setup and on PostgreSQL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from api.helpers import API, make_settings, register
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.main import create_app
from app.observability import JsonFormatter, observe_report
from graders.problem import ProblemBank

pytestmark = pytest.mark.service
CODE = "def module_basics_forward(seed, x, features):\n    return x\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'h.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_health_readiness_and_queue_depth(tmp_path: Path, data_dir: Path, bank: ProblemBank,
                                          database_url: str) -> None:
    app = create_app(make_settings(tmp_path, data_dir, database_url=database_url), bank=bank)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        head = checks["migrations"]["head"]
        assert head is not None and checks["migrations"] == {"ok": True, "current": head, "head": head}
        assert checks["problems"]["loaded"] == len(bank.problems) > 0
        assert "broker" not in checks  # embedded: no Redis to need
        alice = register(client, "alice")
        # grading_workers=0 in these settings: the attempt stays queued, as behind a stalled worker fleet
        r = client.post(f"{API}/submissions", json={"problem_id": "nnx-module-basics", "code": CODE}, headers=alice)
        assert r.status_code == 202
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'gradax_queue_depth{status="queued"} 1.0' in metrics.text
        assert 'gradax_queue_depth{status="running"} 0.0' in metrics.text
        assert "gradax_pool_healthy 1.0" in metrics.text and 'gradax_pool_info{kind="cold"} 1.0' in metrics.text
        # the schema behind the app's back is rolled back: readiness says so
        with app.state.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")  # an older schema
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["migrations"]["ok"] is False


def test_celery_mode_readiness_needs_the_broker(tmp_path: Path, data_dir: Path, bank: ProblemBank, pg_url: str) -> None:
    settings = make_settings(tmp_path, data_dir, database_url=pg_url, grading_backend="celery",
                             redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with TestClient(create_app(settings, bank=bank)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["broker"]["ok"] is False
        assert r.json()["checks"]["database"]["ok"] is True


def test_grading_latency_and_verdicts_are_counted() -> None:
    from datetime import datetime, timedelta

    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_count = sample("gradax_verdicts_total", {"verdict": "wrong_answer", "mode": "submit"})
    before_fast = sample("gradax_grading_seconds_bucket", {"mode": "submit", "le": "0.25"})
    before_all = sample("gradax_grading_seconds_count", {"mode": "submit"})
    now = datetime(2026, 1, 1)
    observe_report(mode="submit", verdict="wrong_answer", created_at=now, finished_at=now + timedelta(seconds=0.2))
    observe_report(mode="submit", verdict="wrong_answer", created_at=now, finished_at=now + timedelta(seconds=4))
    assert sample("gradax_verdicts_total", {"verdict": "wrong_answer", "mode": "submit"}) == before_count + 2
    assert sample("gradax_grading_seconds_bucket", {"mode": "submit", "le": "0.25"}) == before_fast + 1
    assert sample("gradax_grading_seconds_count", {"mode": "submit"}) == before_all + 2


def test_json_logs_are_one_object_per_line_with_extras() -> None:
    record = logging.LogRecord("gradax.worker", logging.ERROR, __file__, 1, "attempt %d: %s", (7, "done"), None)
    record.attempt_id = 7
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "attempt 7: done" and entry["level"] == "error" and entry["logger"] == "gradax.worker"
    assert entry["attempt_id"] == 7 and "ValueError: boom" in entry["exc"]
