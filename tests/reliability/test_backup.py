"""`gradax backup` while the app writes: the copy is consistent and restores into a working server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.backup import sqlite_path
from app.core.config import Settings
from app.main import create_app
from app.models import Attempt
from graders.problem import ProblemBank

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
BULK = "# padding so the database spans many backup steps\n" + "x = 1\n" * 3000


def settings_for(data_dir: Path, database_url: str = "") -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, secret_key="backup-secret-" + "x" * 40,
                    grading_workers=0, submit_rate=0, max_backlog=0, argon2_time_cost=1, argon2_memory_kib=8192)


def test_backup_during_writes_restores_every_committed_attempt(tmp_path: Path) -> None:
    live_dir, restored_dir = tmp_path / "live", tmp_path / "restored"
    bank = ProblemBank(ROOT / "problems")
    app = create_app(settings_for(live_dir), bank=bank)
    problem = sorted(bank.problems)[0]
    with TestClient(app) as client:
        # Hundreds of attempts (several MB), so the copy takes many steps with writes in between.
        with app.state.session_factory() as session:
            r = client.post("/api/v1/auth/register", json={"username": "seed", "password": PASSWORD})
            seed_id = r.json()["id"]
            session.add_all(Attempt(user_id=seed_id, problem_id=problem, mode="run", code=BULK, status="done",
                                    verdict="accepted") for _ in range(400))
            session.commit()

        committed: list[int] = []
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                name = f"writer{i}"
                client.post("/api/v1/auth/register", json={"username": name, "password": PASSWORD})
                token = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD}).json()
                r = client.post("/api/v1/submissions", json={"problem_id": problem, "code": f"# {name}\n"},
                                headers={"Authorization": f"Bearer {token['access_token']}"})
                assert r.status_code == 202, r.text
                committed.append(r.json()["id"])
                i += 1

        writer = threading.Thread(target=write)
        writer.start()
        while len(committed) < 3 and writer.is_alive():
            time.sleep(0.02)
        before = list(committed)
        target = tmp_path / "backups" / "gradax-backup.db"
        env = {**os.environ, "GRADAX_DATA_DIR": str(live_dir), "GRADAX_SECRET_KEY": "backup-secret-" + "x" * 40}
        result = subprocess.run([str(Path(sys.executable).parent / "gradax"), "backup", str(target)], env=env,
                                capture_output=True, text=True, timeout=300)
        after = list(committed)
        stop.set()
        writer.join(60)
        assert result.returncode == 0, result.stderr
        assert "attempts)" in result.stdout
        assert len(after) > len(before), "no write happened during the backup; the test proves less than it says"

    assert not target.with_name(target.name + ".partial").exists()
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = {i for (i,) in conn.execute("SELECT id FROM attempts")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    # Everything committed before the backup started is in it; the copy is a prefix of the history.
    assert set(before) <= ids
    assert len(ids) >= 400 + len(before)

    # Restore: the copy becomes a new data dir's database, and a server on it sees every attempt.
    restored_dir.mkdir()
    (restored_dir / "gradax.db").write_bytes(target.read_bytes())
    restored = create_app(settings_for(restored_dir), bank=bank)
    assert sqlite_path(restored.state.settings.sqlalchemy_url) == (restored_dir / "gradax.db").resolve()
    with TestClient(restored) as client:
        token = client.post("/api/v1/auth/token", data={"username": "writer0", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        r = client.get(f"/api/v1/submissions/{before[0]}", headers=headers)
        assert r.status_code == 200 and r.json()["code"] == "# writer0\n"
        with restored.state.session_factory() as session:
            assert session.query(Attempt).count() == len(ids)
