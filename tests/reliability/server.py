"""A real `gradax serve` in a subprocess for reliability tests: start, kill, restart, and talk to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from http_tls import TLS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
API = "/api/v1"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def golden_case(problem: str, case: str) -> tuple[str, str]:
    """(code, expected verdict) of a golden grading case."""
    folder = GOLDEN / problem / case
    return (folder / "submission.py").read_text(), json.loads((folder / "expected.json").read_text())["verdict"]


class Server:
    """`gradax serve` on 127.0.0.1 with its own SQLite file; the reference cache lives in the shared data dir."""

    def __init__(self, tmp_path: Path, data_dir: Path, **env: str):
        self.db_path = tmp_path / "gradax.db"
        self.log_path = tmp_path / "server.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GRADAX_DATA_DIR": str(data_dir),
            "GRADAX_DATABASE_URL": f"sqlite:///{self.db_path}",
            "GRADAX_SECRET_KEY": "reliability-secret-" + "x" * 40,
            "GRADAX_SUBMIT_RATE": "0",
            # Tests register many accounts from one address; test_abuse.py turns the log in limits on.
            "GRADAX_AUTH_RATE_PER_CLIENT": "0",
            "GRADAX_AUTH_RATE_PER_USERNAME": "0",
            "GRADAX_ARGON2_TIME_COST": "1",
            "GRADAX_ARGON2_MEMORY_KIB": "8192",
            "GRADAX_LOG_LEVEL": "WARNING",
            # The warm pool keeps these tests to minutes on a busy 2-core machine; GRADAX_RELIABILITY_POOL=cold
            # runs them on the cold executor (the server's default) instead.
            "GRADAX_POOL": os.environ.get("GRADAX_RELIABILITY_POOL", "warm"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "gradax"), "serve", "--port", str(self.port),
                                      "--log-level-uvicorn", "warning"],
                                     cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base + "/readyz", timeout=2, verify=TLS).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + self.log_path.read_text()[-5000:])
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or the OOM killer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (what systemd, Docker and Kubernetes send) and wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base + API, **{"timeout": 30, "verify": TLS, **kw})

    def register(self, client: httpx.Client, username: str) -> dict[str, str]:
        r = client.post("/auth/register", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = client.post("/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the database directly (read-only; WAL lets this run beside the server)."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        finally:
            conn.close()

    def queue_depth(self) -> dict[str, int]:
        rows = self.query("SELECT status, count(*) FROM attempts WHERE status IN ('queued', 'running') GROUP BY status")
        return {"queued": 0, "running": 0, **{s: int(n) for s, n in rows}}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(30)
            except subprocess.TimeoutExpired:
                pass


def wait_all_done(server: Server, ids: Iterable[int], timeout: float) -> None:
    wanted = sorted(set(ids))
    deadline = time.monotonic() + timeout
    marks = ",".join("?" * len(wanted))
    while True:
        left = server.query(f"SELECT id, status FROM attempts WHERE id IN ({marks}) AND status != 'done'", wanted)
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(left)} attempts not done after {timeout} s: {left[:10]}\n"
                                 + server.log_path.read_text()[-5000:])
        time.sleep(0.5)
