"""A real `gradax serve` for tests that talk to it over HTTP (browser and student CLI tests)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long enough password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(workdir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    # The production argon2 cost (64 MiB, 3 passes: 0.17 CPU-s a hash) for every registration and login of the
    # browser, CLI and LTI tests bought nothing they check; tests/reliability/test_abuse.py keeps it where it counts.
    return {**os.environ, "GRADAX_DATA_DIR": str(data_dir),
            "GRADAX_DATABASE_URL": f"sqlite:///{workdir / 'browser.db'}", "GRADAX_GRADING_WORKERS": "1",
            "GRADAX_POOL": os.environ.get("GRADAX_BROWSER_POOL", "cold"),
            "GRADAX_ARGON2_TIME_COST": "1", "GRADAX_ARGON2_MEMORY_KIB": "8192", **extra}


@contextlib.contextmanager
def running_server(workdir: Path, data_dir: Path, **extra: str) -> Iterator[str]:
    """`gradax serve` on a free port with a fresh database in `workdir`; caches shared with the rest of the run."""
    port = free_port()
    env = server_env(workdir, data_dir, **extra)
    log = (workdir / "server.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gradax"), "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "/api/v1/problems", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (workdir / "server.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass
class SharedServer:
    """One server for many tests (starting one costs seconds): tests keep apart by using their own users."""

    base: str
    workdir: Path
    env: dict[str, str]

    def create_user(self, name: str, role: str = "student", password: str = PASSWORD) -> None:
        """The account, written into the server's database as `gradax user create` does, in this process: a
        `gradax` process per account cost ~1.1 CPU-s (imports); tests/api/test_platform.py tests the command."""
        from app.db import make_engine, make_session_factory
        from app.models import Role
        from app.services.users import create_user

        engine = make_engine(self.env["GRADAX_DATABASE_URL"])
        try:
            with make_session_factory(engine)() as session:
                create_user(session=session, username=name, password=password, role=Role(role))
        finally:
            engine.dispose()

    def token(self, username: str, password: str = PASSWORD) -> str:
        """A bearer token for that user from the API's log in. Fetch one per test and reuse it: by default the server
        allows 10 log ins per username per minute, and a poll that logged in on every call ran into that (429)."""
        form = urllib.parse.urlencode({"username": username, "password": password}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.base + "/api/v1/auth/token", data=form)) as r:
            return str(json.load(r)["access_token"])
