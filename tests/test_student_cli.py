"""`gradax login / pull / test / submit` against a real server started by the test (tests/live_server.py).

`gradax test` must give the same messages as the server's Run; `submit` the same report as the page; all four
exit as `gradax grade` does (0 accepted, 1 graded and not accepted, 2 could not).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from live_server import PASSWORD, SharedServer

ROOT = Path(__file__).resolve().parent.parent
GRADAX = Path(sys.executable).parent / "gradax"
PID = "nnx-module-basics"
PROBLEM = yaml.safe_load((ROOT / "problems" / f"{PID}.yaml").read_text())
WRONG = next(m for m in PROBLEM["known_mistakes"] if m["id"] == "no-scaling")
RIGHT = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-grading")]


class Student:
    """The student's shell: a working folder and a config directory of their own."""

    def __init__(self, home: Path):
        self.folder = home / "practice"
        self.folder.mkdir(parents=True)
        self.config = home / "config"
        self.env = {**os.environ, "GRADAX_CONFIG_DIR": str(self.config)}

    def gradax(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(GRADAX), *args], input=stdin, capture_output=True, text=True, env=self.env,
                              cwd=self.folder, timeout=600)


def test_login_pull_test_submit(shared_server: SharedServer, tmp_path: Path) -> None:
    shared_server.create_user("cli-student")
    me = Student(tmp_path)

    # login: wrong password is exit 2 and stores nothing; the right one stores a token readable by the user only
    bad = me.gradax("login", shared_server.base, "--username", "cli-student", "--password-stdin", stdin="nope\n")
    assert bad.returncode == 2 and "wrong username or password" in bad.stderr
    assert not (me.config / "credentials.json").exists()
    ok = me.gradax("login", shared_server.base, "--username", "cli-student", "--password-stdin", stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    credentials = me.config / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(me.config.stat().st_mode) == 0o700
    saved = json.loads(credentials.read_text())
    assert saved["server"] == shared_server.base and saved["username"] == "cli-student" and saved["token"]

    # pull: statement, starter code and public tests (inputs and expected outputs) in this folder
    pulled = me.gradax("pull", PID)
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(p.name for p in me.folder.iterdir()) == [f"{PID}.md", f"{PID}.py", f"{PID}.tests.json"]
    assert (me.folder / f"{PID}.py").read_text() == PROBLEM["starter_code"]
    statement = (me.folder / f"{PID}.md").read_text()
    assert "def module_basics_forward(seed, x, features):" in statement and "Expected output:" in statement
    tests = json.loads((me.folder / f"{PID}.tests.json").read_text())
    assert [t["name"] for t in tests["problem"]["tests"]["public"]] == [t["name"] for t in PROBLEM["tests"]["public"]]
    assert tests["problem"]["tests"]["public"][0]["args"] == {"seed": 0.0, "x": [1.0, 2.0, 3.0], "features": 4.0}
    # pulling again keeps the student's file
    (me.folder / f"{PID}.py").write_text(WRONG["code"])
    again = me.gradax("pull", PID)
    assert again.returncode == 0 and f"kept {PID}.py" in again.stdout
    assert (me.folder / f"{PID}.py").read_text() == WRONG["code"]

    # test: offline, the public tests, the same messages as the server's Run
    offline = me.gradax("test", PID, f"{PID}.py", "--json")
    assert offline.returncode == 1, offline.stderr
    local = json.loads(offline.stdout)
    assert local["verdict"] == "wrong_answer"
    run = me.gradax("submit", PID, f"{PID}.py", "--run", "--json")
    assert run.returncode == 1, run.stderr
    remote = json.loads(run.stdout)
    fields = ("name", "status", "message", "expected", "got", "stage", "max_abs_error")
    assert [{k: t.get(k) for k in fields} for t in local["tests"]] == \
        [{k: t.get(k) for k in fields} for t in remote["tests"]]
    assert local["message"] == remote["message"]
    human = me.gradax("test", PID, f"{PID}.py")
    assert human.returncode == 1 and "[FAIL] example (public)" in human.stdout and "expected:" in human.stdout
    (me.folder / "right.py").write_text(RIGHT)
    passing = me.gradax("test", PID, "right.py")
    assert passing.returncode == 0 and f"{PID}: accepted" in passing.stdout, passing.stdout + passing.stderr

    # submit: every test on the server, the page's report, exit codes as gradax grade
    wrong = me.gradax("submit", PID, f"{PID}.py")
    assert wrong.returncode == 1, wrong.stderr
    assert f"{PID}: wrong_answer" in wrong.stdout and f"Diagnosis: {WRONG['message']}" in wrong.stdout
    assert "(hidden)" in wrong.stdout
    right = me.gradax("submit", PID, "right.py")
    assert right.returncode == 0, right.stdout + right.stderr
    assert f"{PID}: accepted  (7/7 tests" in right.stdout
    # ... and the page shows the same attempts
    history = subprocess.run([sys.executable, "-c", (
        "import json, sys; from gradax.http import Server; from gradax import config; c = config.load();"
        f"print(json.dumps(Server(c.server, c.token).request('GET', '/submissions?problem_id={PID}')))")],
        capture_output=True, text=True, env=me.env, check=True)
    verdicts = [s["verdict"] for s in json.loads(history.stdout)["data"]]
    assert verdicts == ["accepted", "wrong_answer", "wrong_answer"]


def test_what_cannot_be_done_exits_2_and_says_why(shared_server: SharedServer, tmp_path: Path) -> None:
    me = Student(tmp_path)
    (me.folder / "a.py").write_text(RIGHT)
    not_logged_in = me.gradax("submit", PID, "a.py")
    assert not_logged_in.returncode == 2 and "not logged in" in not_logged_in.stderr
    not_pulled = me.gradax("test", PID, "a.py")
    assert not_pulled.returncode == 2 and f"run `gradax pull {PID}`" in not_pulled.stderr
    unknown = me.gradax("pull", "no-such-problem", "--server", shared_server.base)
    assert unknown.returncode == 2 and "no-such-problem" in unknown.stderr
    unreachable = me.gradax("login", "http://127.0.0.1:9", "--username", "x", "--password-stdin", stdin="x\n")
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
    shared_server.create_user("cli-missing-file")
    me.gradax("login", shared_server.base, "--username", "cli-missing-file", "--password-stdin", stdin=PASSWORD)
    missing = me.gradax("submit", PID, "missing.py")
    assert missing.returncode == 2 and "cannot read missing.py" in missing.stderr
