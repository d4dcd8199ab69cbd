"""Instructor workflow: role checks, upload with located errors, reload, statistics, CSV export, regrade."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import API, PASSWORD, csrf_from, login, make_settings, make_user, register, wait_done
from app.grading import claims
from app.main import create_app
from app.models import Attempt, AttemptTest, Progress, RegradeJob, Role, User, utcnow
from app.services.instructor import recorded_flips
from app.services.regrades import STALE_S, RegradeJobs
from app.services.uploads import target_paths
from graders.executor import Executor
from graders.report import Report, TestReport, TestStatus, Verdict
from graders.scaffold import REFERENCE, TEMPLATE, scaffold

IDS = ("aa-double", "bb-double")


def problem_yaml(problem_id: str, **replace: str) -> str:
    text = TEMPLATE.format(id=problem_id, title=problem_id, function=problem_id.replace("-", "_"))
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def reference(problem_id: str) -> str:
    return REFERENCE.format(id=problem_id, function=problem_id.replace("-", "_"))


@pytest.fixture
def problems_dir(tmp_path: Path) -> Path:
    """A scratch bank of two tiny scaffolded problems: tests never touch the real problems/."""
    root = tmp_path / "bank" / "problems"
    for pid in IDS:
        scaffold(pid, root)
    return root


@pytest.fixture
def iapp(tmp_path: Path, data_dir: Path, problems_dir: Path) -> FastAPI:
    return create_app(make_settings(tmp_path, data_dir, problems_dir=problems_dir))


@pytest.fixture
def iclient(iapp: FastAPI) -> Iterator[TestClient]:
    with TestClient(iapp) as c:
        yield c


@pytest.fixture
def teacher(iapp: FastAPI, iclient: TestClient) -> dict[str, str]:
    make_user(iapp, "teacher", Role.INSTRUCTOR)
    return login(iclient, "teacher")


def browser_login(client: TestClient, username: str) -> str:
    """Log in through the form like a browser; returns the session's CSRF token."""
    token = csrf_from(client.get("/login").text)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303
    return csrf_from(client.get("/").text)


# -- who may see what ------------------------------------------------------------------------------------------

def test_students_get_403_on_every_instructor_page_and_route(iclient: TestClient) -> None:
    alice = register(iclient, "alice")
    for method, path in [("GET", "/instructor/stats"), ("GET", "/instructor/grades.csv"),
                         ("POST", "/instructor/problems"), ("POST", f"/instructor/problems/{IDS[0]}/regrade"),
                         ("GET", f"/instructor/problems/{IDS[0]}/regrade"),
                         ("POST", "/instructor/problem-checks"), ("GET", "/instructor/problem-checks/1"),
                         ("POST", "/problems/reload")]:
        payload = {"yaml": problem_yaml("cc-double"), "reference": reference("cc-double")} if method == "POST" else None
        r = iclient.request(method, API + path, headers=alice, json=payload)
        assert r.status_code == 403, (path, r.text)
    token = browser_login(iclient, "alice")
    for path in ("/instructor", "/instructor/grades.csv", "/instructor/problems/upload",
                 f"/instructor/problems/{IDS[0]}/regrade", "/instructor/problems/upload/checks/1"):
        assert iclient.get(path, headers={"Accept": "text/html"}).status_code == 403, path
    for path in ("/instructor/reload", f"/instructor/problems/{IDS[0]}/regrade", "/instructor/problems/upload"):
        r = iclient.post(path, data={"csrf_token": token, "problem_yaml": problem_yaml("cc-double"),
                                     "reference": reference("cc-double")})
        assert r.status_code == 403, path
    assert not (iclient.app.state.bank.directory / "cc-double.yaml").exists()  # type: ignore[attr-defined]


def test_anonymous_visitors_are_sent_to_log_in(iclient: TestClient) -> None:
    r = iclient.get("/instructor", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Finstructor"
    assert iclient.get(f"{API}/instructor/stats").status_code == 401


def test_instructor_forms_need_the_csrf_token(iapp: FastAPI, iclient: TestClient) -> None:
    make_user(iapp, "teacher", Role.INSTRUCTOR)
    browser_login(iclient, "teacher")
    assert iclient.post("/instructor/reload", data={"csrf_token": "forged"}).status_code == 403


# -- upload ----------------------------------------------------------------------------------------------------

def test_upload_with_errors_lists_them_by_line_and_writes_nothing(iapp: FastAPI, iclient: TestClient,
                                                                  problems_dir: Path) -> None:
    make_user(iapp, "teacher", Role.INSTRUCTOR)
    token = browser_login(iclient, "teacher")
    bad = problem_yaml("cc-double", **{"difficulty: easy": "difficulty: impossible",
                                      "    kind: array": "    kind: tensor"})
    lines = bad.splitlines()
    difficulty_line = lines.index("difficulty: impossible") + 1
    kind_line = lines.index("    kind: tensor") + 1
    r = iclient.post("/instructor/problems/upload", data={"csrf_token": token, "problem_yaml": bad,
                                                         "reference": reference("cc-double")})
    assert r.status_code == 422
    got_lines = re.findall(r'data-testid="error-line">(\d+)<', r.text)
    assert sorted(map(int, got_lines)) == sorted([difficulty_line, kind_line])
    assert "difficulty" in r.text and "args.1.kind" in r.text
    assert not (problems_dir / "cc-double.yaml").exists()

    broken = "def cc_double(seed, x):\n    return x *\n"
    r = iclient.post("/instructor/problems/upload",
                     data={"csrf_token": token, "problem_yaml": problem_yaml("cc-double"), "reference": broken})
    assert r.status_code == 422
    assert re.findall(r'data-testid="error-line">(\d+)<', r.text) == ["2"] and "syntax error" in r.text
    assert not (problems_dir / "cc-double.yaml").exists()


def test_upload_makes_the_problem_live_without_restart(iapp: FastAPI, iclient: TestClient,
                                                        problems_dir: Path) -> None:
    make_user(iapp, "teacher", Role.INSTRUCTOR)
    token = browser_login(iclient, "teacher")
    assert "/instructor/problems/upload" in iclient.get("/instructor").text
    files = {"problem_file": ("cc-double.yaml", problem_yaml("cc-double").encode(), "application/x-yaml"),
             "reference_file": ("cc_double.py", reference("cc-double").encode(), "text/x-python")}
    r = iclient.post("/instructor/problems/upload", data={"csrf_token": token}, files=files)
    assert r.status_code == 200 and 'data-testid="upload-ok"' in r.text, r.text
    assert (problems_dir / "cc-double.yaml").read_text() == problem_yaml("cc-double")
    assert (problems_dir.parent / "reference_solutions" / "cc_double.py").read_text() == reference("cc-double")
    listed = [p["id"] for p in iclient.get(f"{API}/problems").json()["data"]]
    assert "cc-double" in listed

    # The same id again is refused unless "replace" is ticked.
    retitled = problem_yaml("cc-double", **{'title: "cc-double"': 'title: "Doubling, take two"'})
    r = iclient.post("/instructor/problems/upload", data={"csrf_token": token, "problem_yaml": retitled,
                                                         "reference": reference("cc-double")})
    assert r.status_code == 422 and "already exists" in r.text
    r = iclient.post("/instructor/problems/upload", data={"csrf_token": token, "problem_yaml": retitled,
                                                         "reference": reference("cc-double"), "replace": "true"})
    assert r.status_code == 200
    assert iclient.get(f"{API}/problems/cc-double").json()["title"] == "Doubling, take two"


def test_an_upload_shaped_to_exhaust_the_server_is_a_located_error(iclient: TestClient, teacher: dict[str, str],
                                                                    problems_dir: Path) -> None:
    """Deep nesting crashed the server's process (libyaml's composer recurses in C); an alias chain or a size typo
    made it build arrays of gigabytes. Each is a located error now, and the server goes on."""
    uploads = {
        "nested": problem_yaml("cc-double", **{"x: [1.0, 2.0, 3.0]": "x: " + "[" * 100_000 + "]" * 100_000}),
        "aliases": problem_yaml("cc-double", **{"x: [1.0, 2.0, 3.0]": "x: &a0 [1.0, *a0]"}),
        "size": problem_yaml("cc-double", **{"dims: {n: [1, 16]}": "dims: {n: [1, 100000000]}"}),
    }
    said = {"nested": "nested more than 64 levels deep", "aliases": "contains an alias (*name) of itself",
            "size": "holds 100,000,000 numbers; a test array holds at most 1,048,576"}
    for name, text in uploads.items():
        r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                         json={"yaml": text, "reference": reference("cc-double")})
        assert r.status_code == 422, (name, r.text)
        [error] = r.json()["errors"]
        assert error["file"] == "problem.yaml" and said[name] in error["message"], (name, error)
    assert not (problems_dir / "cc-double.yaml").exists()
    assert iclient.get(f"{API}/problems").status_code == 200


# -- upload checks in the background ---------------------------------------------------------------------------

def wait_check(client: TestClient, check_id: int, headers: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    """Poll an upload check until it ends; returns its last view, with every phase seen while it ran."""
    deadline, phases = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"{API}/instructor/problem-checks/{check_id}", headers=headers).json()
        if body["status"] == "running":
            if (body["step"], body["phase"]) not in phases:
                phases.append((body["step"], body["phase"]))
        else:
            body["seen"] = phases
            return body
        time.sleep(0.1)
    raise AssertionError(f"upload check {check_id} not done within {timeout} s")


@pytest.fixture
def held_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Upload checks that stay running (at step 1) until the test sets the event; then they pass."""
    import threading

    from app.services import upload_checks

    release = threading.Event()

    def held(result: Any, yaml_text: str, reference_text: str, settings: Any, executor: Any = None,
             on_stage: Any = None) -> None:
        on_stage("running the reference and its 3 known mistakes on every test (trusted runner)", 1, 2)
        assert release.wait(60)
        result.checked = True

    monkeypatch.setattr(upload_checks, "check_upload", held)
    yield release
    release.set()


def test_a_checked_upload_is_followed_on_a_page_that_survives_a_reload(iapp: FastAPI, iclient: TestClient,
                                                                       problems_dir: Path, held_check: Any) -> None:
    """The form answers as soon as both files are valid, with the check's own page: what the check is doing (it
    refreshes itself), the same after a reload; once it passes, the problem is saved and loaded."""
    make_user(iapp, "teacher", Role.INSTRUCTOR)
    token = browser_login(iclient, "teacher")
    r = iclient.post("/instructor/problems/upload", follow_redirects=False,
                     data={"csrf_token": token, "problem_yaml": problem_yaml("cc-double"),
                           "reference": reference("cc-double"), "check": "true"})
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert re.fullmatch(r"/instructor/problems/upload/checks/\d+", location), location
    running = 'data-testid="upload-check" data-status="running" data-step="1" data-steps="2"'
    # The check's thread reports its first step as soon as it is scheduled (on a loaded machine, after the first
    # request may already be answered with "starting"): wait for that, then a reload shows the same.
    deadline = time.monotonic() + 30
    while running not in (page := iclient.get(location).text) and time.monotonic() < deadline:
        assert 'data-status="running"' in page, page
        time.sleep(0.05)
    for _ in range(2):
        page = iclient.get(location).text
        assert running in page, page
        assert "step 1 of 2: <span data-testid=\"upload-check-phase\">running the reference" in page
        assert '<meta http-equiv="refresh" content="2">' in page
    assert not (problems_dir / "cc-double.yaml").exists()  # nothing saved while it runs
    held_check.set()
    deadline = time.monotonic() + 30
    while 'data-status="running"' in (page := iclient.get(location).text):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert 'data-status="done"' in page and 'data-testid="upload-ok"' in page, page
    assert '<meta http-equiv="refresh"' not in page
    assert (problems_dir / "cc-double.yaml").read_text() == problem_yaml("cc-double")
    assert iclient.get(f"{API}/problems/cc-double").status_code == 200  # loaded, no reload asked
    # Left and come back to: the upload page lists it.
    recent = iclient.get("/instructor/problems/upload").text
    assert f'<a href="{location}"><code>cc-double</code></a>' in recent and "passed, saved" in recent, recent
    assert iclient.get("/instructor/problems/upload/checks/999999").status_code == 404
    assert iclient.get(f"/instructor/problems/upload/checks/{2**70}").status_code == 422  # no id, no 500


def test_one_check_of_a_problem_id_at_a_time_and_invalid_files_start_none(iclient: TestClient,
                                                                          teacher: dict[str, str],
                                                                          held_check: Any) -> None:
    body = {"yaml": problem_yaml("cc-double"), "reference": reference("cc-double")}
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher, json=body)
    assert r.status_code == 202, r.text
    first = r.json()
    assert first["status"] == "running" and r.headers["location"] == f"/api/v1/instructor/problem-checks/{first['id']}"
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher, json=body)
    assert r.status_code == 422 and "is running" in r.json()["errors"][0]["message"], r.text
    # Another id is accepted, and waits for the first: one check at a time beside the students' gradings.
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher,
                     json={"yaml": problem_yaml("dd-double"), "reference": reference("dd-double")})
    assert r.status_code == 202, r.text
    second = r.json()["id"]
    deadline = time.monotonic() + 30
    while (view := iclient.get(f"{API}/instructor/problem-checks/{second}", headers=teacher).json())["phase"] \
            != "waiting for another upload's check to end":
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
    assert view["status"] == "running" and view["step"] == 0
    # Files that do not validate are answered at once, located, and start no check.
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher,
                     json={"yaml": problem_yaml("dd-double"), "reference": "def nope(:\n"})
    assert r.status_code == 422 and r.json()["errors"][0]["file"] == "reference.py", r.text
    held_check.set()
    done = wait_check(iclient, first["id"], teacher)
    assert done["status"] == "done" and done["result"]["ok"], done
    assert done["result"]["written"] == ["cc-double.yaml", "cc_double.py"]
    assert wait_check(iclient, second, teacher)["result"]["written"] == ["dd-double.yaml", "dd_double.py"]
    # Ended, the id may be checked again (replacing what the first one saved needs `replace`).
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher, json=body)
    assert r.status_code == 422 and "already exists" in r.json()["errors"][0]["message"]


def test_a_check_that_saved_but_could_not_reload_says_so(iapp: FastAPI, iclient: TestClient,
                                                         teacher: dict[str, str], problems_dir: Path,
                                                         held_check: Any) -> None:
    """The files were written; reloading the bank failed: the check is not reported as failed (nothing would say
    the files are there) but as saved, with a warning that says how to load them."""
    def broken_reload() -> None:
        raise OSError("problems directory unreadable")

    iapp.state.upload_checks.on_saved = broken_reload
    held_check.set()
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher,
                     json={"yaml": problem_yaml("cc-double"), "reference": reference("cc-double")})
    done = wait_check(iclient, r.json()["id"], teacher)
    assert done["status"] == "done" and done["result"]["ok"] and done["result"]["written"], done
    assert any("press Reload problems" in w for w in done["result"]["warnings"]), done
    assert (problems_dir / "cc-double.yaml").exists()


def test_a_check_whose_server_stopped_reads_as_interrupted(iapp: FastAPI, iclient: TestClient,
                                                           teacher: dict[str, str]) -> None:
    """A check left running by a server that restarted (same host, another process) or that stopped sending
    heartbeats anywhere is interrupted, with its files kept to send again; nothing was written. A server's start
    also removes checks that ended long ago."""
    import socket

    from app.models import UploadCheck
    from app.services.upload_checks import KEEP_DAYS, STALE_S

    factory = iapp.state.session_factory
    with factory() as session:
        restarted = UploadCheck(problem_id="ee-double", yaml_text=problem_yaml("ee-double"),
                                reference_text=reference("ee-double"), runner=f"{socket.gethostname()}:1")
        silent = UploadCheck(problem_id="ff-double", yaml_text="y", reference_text="r", runner="elsewhere:1",
                             heartbeat_at=utcnow() - timedelta(seconds=STALE_S + 5))
        old = UploadCheck(problem_id="gg-double", yaml_text="y", reference_text="r", status="done",
                          finished_at=utcnow() - timedelta(days=KEEP_DAYS + 1))
        session.add_all([restarted, silent, old])
        session.commit()
        ids, old_id = (restarted.id, silent.id), old.id
    iapp.state.upload_checks.recover()
    assert iclient.get(f"{API}/instructor/problem-checks/{old_id}", headers=teacher).status_code == 404  # removed
    views = [iclient.get(f"{API}/instructor/problem-checks/{i}", headers=teacher).json() for i in ids]
    assert [v["status"] for v in views] == ["interrupted", "interrupted"], views
    assert "restarted" in views[0]["error"] and "stopped" in views[1]["error"]
    browser_login(iclient, "teacher")
    page = iclient.get(f"/instructor/problems/upload/checks/{ids[0]}").text
    assert 'data-status="interrupted"' in page and "send it again" in page
    assert "ee-double" in page and "name=\"check\" value=\"true\" checked" in page  # files kept, box ticked


@pytest.mark.slow
@pytest.mark.xdist_group("web-grading")
def test_a_background_check_grades_the_upload_and_saves_it_only_once_it_passes(
        iclient: TestClient, teacher: dict[str, str], problems_dir: Path) -> None:
    """Through the sandbox, in the background: a known mistake the tests cannot tell apart is located at its entry
    and nothing is saved; corrected, the check goes through its steps and the problem is saved and prepared."""
    bad = problem_yaml("cc-double", **{"          return x + 2": "          return x * 2"})
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher,
                     json={"yaml": bad, "reference": reference("cc-double")})
    assert r.status_code == 202, r.text
    done = wait_check(iclient, r.json()["id"], teacher)
    assert done["status"] == "done" and not done["result"]["ok"] and done["result"]["written"] == [], done
    [error] = [e for e in done["result"]["errors"] if "'plus-two' passes every test" in e["message"]]
    assert (error["file"], error["line"]) == ("problem.yaml", bad.splitlines().index("  - id: plus-two") + 1)
    assert not (problems_dir / "cc-double.yaml").exists()
    r = iclient.post(f"{API}/instructor/problem-checks", headers=teacher,
                     json={"yaml": problem_yaml("cc-double"), "reference": reference("cc-double")})
    done = wait_check(iclient, r.json()["id"], teacher)
    assert done["status"] == "done" and done["result"]["ok"], done
    assert [step for step, _ in done["seen"]] == sorted(step for step, _ in done["seen"])  # forward only
    assert all(0 <= step <= done["steps"] == 2 for step, _ in done["seen"])
    assert (problems_dir / "cc-double.yaml").exists()
    assert iclient.get(f"{API}/problems/cc-double", headers=teacher).status_code == 200


def test_upload_api_reports_errors_as_json(iclient: TestClient, teacher: dict[str, str]) -> None:
    r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                     json={"yaml": problem_yaml("cc-double", **{"order: 100": "order: many"}),
                           "reference": reference("cc-double")})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["file"] == "problem.yaml" and error["line"] == 4 and error["message"].startswith("order:")
    r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                     json={"yaml": problem_yaml("cc-double"), "reference": reference("cc-double")})
    assert r.status_code == 201 and r.json()["sync"]["added"] == 1 and r.json()["checked"] is False


def test_upload_reports_every_error_of_both_files_at_once(iclient: TestClient, teacher: dict[str, str]) -> None:
    """A schema error (line 4), a test naming an unknown argument (line 34) and a reference that does not define
    the function all come back in one answer, in file order, each with its file and line."""
    broken = problem_yaml("cc-double", **{"order: 100": "order: many",
                                          "args: {seed: 1, x: []}": "args: {seed: 1, y: []}"})
    r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                     json={"yaml": broken, "reference": "def something_else(seed, x):\n    return x\n"})
    assert r.status_code == 422
    errors = [(e["file"], e["line"], e["message"].split(":")[0]) for e in r.json()["errors"]]
    assert errors == [("problem.yaml", 4, "order"), ("problem.yaml", 34, "tests.hidden.0.args"),
                      ("reference.py", 1, "does not define the function 'cc_double'")], errors
    assert "unknown args ['y']" in r.json()["errors"][1]["message"]


def test_upload_of_text_that_is_not_utf8_is_an_error_not_a_crash(iclient: TestClient,
                                                                 teacher: dict[str, str]) -> None:
    body = json.dumps({"yaml": problem_yaml("cc-double"), "reference": "# \ud800\n" + reference("cc-double")})
    r = iclient.post(f"{API}/instructor/problems", content=body,
                     headers={**teacher, "content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"file": "reference.py", "line": 1, "message": "not valid UTF-8 text"}]


def test_upload_paths_cannot_leave_the_problems_directory(tmp_path: Path) -> None:
    for bad in ("../evil", "a/b", "..", "/etc/passwd", "x" * 80):
        with pytest.raises(ValueError):
            target_paths(tmp_path / "problems", bad)
    assert target_paths(tmp_path / "problems", "ok-id") == (
        (tmp_path / "problems" / "ok-id.yaml").resolve(), (tmp_path / "reference_solutions" / "ok_id.py").resolve())


# -- reload ----------------------------------------------------------------------------------------------------

def test_reload_picks_up_files_edited_on_disk(iapp: FastAPI, iclient: TestClient, problems_dir: Path,
                                              teacher: dict[str, str]) -> None:
    path = problems_dir / f"{IDS[0]}.yaml"
    path.write_text(path.read_text().replace('title: "Aa double"', 'title: "Edited on disk"'))
    assert iclient.get(f"{API}/problems/{IDS[0]}").json()["title"] == "Aa double"  # not before a reload
    token = browser_login(iclient, "teacher")
    r = iclient.post("/instructor/reload", data={"csrf_token": token})
    assert r.status_code == 200 and "Reloaded: 2 problems (0 new, 1 changed, 0 gone)" in r.text
    assert iclient.get(f"{API}/problems/{IDS[0]}").json()["title"] == "Edited on disk"
    titles = {p["id"]: p["title"] for p in iclient.get(f"{API}/problems").json()["data"]}
    assert titles[IDS[0]] == "Edited on disk"  # the problems table too, not only the bank

    # A file broken on disk disappears from the list and its error shows on the instructor page.
    (problems_dir / f"{IDS[1]}.yaml").write_text(problem_yaml(IDS[1], **{"difficulty: easy": "difficulty: 3"}))
    r = iclient.post(f"{API}/problems/reload", headers=teacher)
    assert r.json()["unavailable"] == 1 and r.json()["errors"] == 1
    assert IDS[1] not in [p["id"] for p in iclient.get(f"{API}/problems").json()["data"]]
    assert "difficulty" in iclient.get("/instructor").text


# -- statistics and grades -------------------------------------------------------------------------------------

def _report(verdict: str, message: str = "", diagnosis: str | None = None) -> dict[str, Any]:
    status = {"accepted": "passed", "runtime_error": "error"}.get(verdict, "failed")
    tests = [{"name": "example", "status": status, "message": message,
              "stage": "values" if status == "failed" else None}]
    return {"verdict": verdict, "message": "", "diagnosis": diagnosis, "tests": tests}


def _seed_attempts(app: FastAPI) -> None:
    """Known attempts straight into the database: who solved what, after how many tries."""
    for name in ("alice", "bob", "carol"):
        make_user(app, name, Role.STUDENT)
    make_user(app, "teacher2", Role.INSTRUCTOR)
    plan = {  # user -> problem -> verdicts in order
        "alice": {IDS[0]: ["wrong_answer", "accepted"], IDS[1]: ["accepted"]},
        "bob": {IDS[0]: ["wrong_answer", "wrong_answer", "wrong_answer", "accepted"]},
        "carol": {IDS[0]: ["runtime_error"]},
        "teacher2": {IDS[0]: ["wrong_answer"]},  # staff attempts are not statistics
    }
    # The same mistake with different numbers in each message: grouped by test, stage and diagnosis, not message.
    failures = {"wrong_answer": ("the output: 3 of 4 values differ beyond tolerance; worst at index ({i},): "
                                 "expected 0.5, got 0.{i}", "You returned the input `x` unchanged."),
                "runtime_error": ("NameError: name 'jnp' is not defined", None)}
    with app.state.session_factory() as session:
        users = {u.username: u.id for u in session.query(User)}
        for name, per_problem in plan.items():
            for pid, verdicts in per_problem.items():
                for i, verdict in enumerate(verdicts):
                    message, diagnosis = failures.get(verdict, ("", None))
                    message = message.replace("{i}", str(i))
                    report = _report(verdict, message, diagnosis)
                    session.add(Attempt(user_id=users[name], problem_id=pid, mode="submit", code="...",
                                        status="done", verdict=verdict, score=1.0 if verdict == "accepted" else 0.0,
                                        report=report, tests=[AttemptTest(position=0, public=True, **t)
                                                              for t in report["tests"]]))
                session.add(Progress(user_id=users[name], problem_id=pid, attempts=len(verdicts),
                                     solved="accepted" in verdicts, best_score=1.0 if "accepted" in verdicts else 0.0,
                                     hints_revealed=0))
        session.commit()


def test_grades_csv_has_one_row_per_student(iapp: FastAPI, iclient: TestClient, teacher: dict[str, str]) -> None:
    _seed_attempts(iapp)
    r = iclient.get(f"{API}/instructor/grades.csv", headers=teacher)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="grades.csv"'
    assert r.text == (f"username,{IDS[0]},{IDS[1]},total\n"
                      "alice,1,1,2\n"
                      "bob,1,0,1\n"
                      "carol,0,0,0\n")
    browser_login(iclient, "teacher")
    page = iclient.get("/instructor/grades.csv")
    assert page.text == r.text and page.headers["content-disposition"].startswith("attachment")
    assert list(csv.reader(io.StringIO(page.text)))[1] == ["alice", "1", "1", "2"]


def test_stats_solve_rate_attempts_to_accept_and_common_failures(iapp: FastAPI, iclient: TestClient,
                                                                 teacher: dict[str, str]) -> None:
    _seed_attempts(iapp)
    body = iclient.get(f"{API}/instructor/stats", headers=teacher).json()
    first = {p["id"]: p for p in body["problems"]}[IDS[0]]
    assert first["attempts"] == 7 and first["students"] == 3 and first["solved"] == 2
    assert first["solve_rate"] == pytest.approx(2 / 3)
    assert first["median_attempts_to_accept"] == 3.0  # alice 2, bob 4
    groups = [(g["test"], g["stage"], g["diagnosis"], g["count"]) for g in first["top_failures"]]
    assert groups == [("example", "values", "You returned the input `x` unchanged.", 4),
                      ("example", "NameError", None, 1)]
    assert first["top_failures"][0]["example"].startswith("the output: 3 of 4 values differ")
    assert first["top_diagnoses"] == [["You returned the input `x` unchanged.", 4]]
    students = {s["username"]: s for s in body["students"]}
    assert set(students) == {"alice", "bob", "carol"}
    assert (students["alice"]["solved"], students["alice"]["attempts"]) == (2, 3)
    assert (students["bob"]["solved"], students["bob"]["attempts"]) == (1, 4)

    browser_login(iclient, "teacher")
    html = iclient.get("/instructor").text
    assert "67% (2/3)" in html and "\u00d74" in html
    # the diagnosis is rendered Markdown (sanitised), not raw backticks
    assert "You returned the input <code>x</code> unchanged." in html and "`x`" not in html
    assert re.search(r'<td data-label="Student">bob</td><td data-label="Problems solved">1</td>'
                     r'<td data-label="Submits">4</td>', html)


def test_stats_read_the_failures_stored_by_grading(iapp: FastAPI, iclient: TestClient,
                                                  teacher: dict[str, str]) -> None:
    """Through the path a grader takes (claim, fenced finish): the per-test rows carry the failing stage."""
    alice = register(iclient, "alice")
    for code, test in (("a = 1\n", TestReport(name="hidden", public=False, status=TestStatus.FAILED, stage="shape",
                                              message="expected shape (4,), got shape (3,)")),
                       ("a = 2\n", TestReport(name="example", public=True, status=TestStatus.ERROR,
                                              message="TypeError: unsupported operand\nmore"))):
        attempt = iclient.post(f"{API}/submissions", json={"problem_id": IDS[0], "code": code}, headers=alice)
        held = claims.claim(iapp.state.session_factory, attempt.json()["id"], worker="test", lease_s=60)
        assert held is not None
        report = Report(problem=IDS[0], verdict=Verdict.WRONG_ANSWER, total=2, passed=1, diagnosis="Off by one.",
                        tests=[TestReport(name="first", public=True, status=TestStatus.PASSED), test])
        assert claims.finish(iapp.state.session_factory, held, report, problem_hash=None, retries=0) \
            == claims.Finish.DONE
    first = {p["id"]: p for p in iclient.get(f"{API}/instructor/stats", headers=teacher).json()["problems"]}[IDS[0]]
    assert [(g["test"], g["stage"], g["diagnosis"], g["count"], g["example"]) for g in first["top_failures"]] == [
        ("hidden", "shape", "Off by one.", 1, "expected shape (4,), got shape (3,)"),
        ("example", "TypeError", "Off by one.", 1, "TypeError: unsupported operand")]
    assert first["top_diagnoses"] == [["Off by one.", 2]]


# -- regrade and check (real grading) --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.xdist_group("web-grading")
def test_regrade_after_the_tests_change_lists_flipped_verdicts(tmp_path: Path, data_dir: Path,
                                                               problems_dir: Path, warm_pool: Executor) -> None:
    app = create_app(make_settings(tmp_path, data_dir, problems_dir=problems_dir, grading_workers=1, pool="warm"),
                     executor=warm_pool)
    pid, fn = IDS[0], IDS[0].replace("-", "_")
    doubled = f"def {fn}(seed, x):\n    return x * 2\n"
    tripled = f"def {fn}(seed, x):\n    return x * 3\n"
    with TestClient(app) as client:
        alice, bob = register(client, "alice"), register(client, "bob")
        make_user(app, "teacher", Role.INSTRUCTOR)
        teacher = login(client, "teacher")
        a = wait_done(client, client.post(f"{API}/submissions", json={"problem_id": pid, "code": doubled},
                                          headers=alice).json()["id"], alice)
        b = wait_done(client, client.post(f"{API}/submissions", json={"problem_id": pid, "code": tripled},
                                          headers=bob).json()["id"], bob)
        assert (a["verdict"], b["verdict"]) == ("accepted", "wrong_answer")

        # The instructor decides the exercise is about tripling: new reference, reload, regrade.
        ref = problems_dir.parent / "reference_solutions" / f"{fn}.py"
        ref.write_text(ref.read_text().replace("* 2", "* 3"))
        assert client.post(f"{API}/problems/reload", headers=teacher).json()["updated"] == 1
        r = client.post(f"{API}/instructor/problems/{pid}/regrade", headers=teacher)
        assert r.status_code == 202 and r.json()["status"] == "running", r.text
        result = wait_regrade(client, pid, teacher)
        assert result["status"] == "done" and result["total"] == result["done"] == 2
        flips = [(a["id"], "alice", "accepted", "wrong_answer"), (b["id"], "bob", "wrong_answer", "accepted")]
        assert sorted((f["attempt_id"], f["username"], f["old"], f["new"]) for f in result["flipped"]) == flips
        with app.state.session_factory() as session:  # recorded on the attempts too, for after a restart
            assert sorted((f.attempt_id, f.username, f.old, f.new) for f in recorded_flips(session, pid)) == flips

        assert client.get(f"{API}/submissions/{a['id']}", headers=alice).json()["verdict"] == "wrong_answer"
        assert client.get(f"{API}/problems/{pid}", headers=alice).json()["progress"]["solved"] is False
        assert client.get(f"{API}/problems/{pid}", headers=bob).json()["progress"]["solved"] is True
        assert client.get(f"{API}/instructor/grades.csv", headers=teacher).text.splitlines()[1:] == [
            "alice,0,0,0", "bob,1,0,1"]

        # The button on the instructor page starts the same; its page refreshes until done, then lists the
        # flips of this run (none now: the tests did not change again).
        token = browser_login(client, "teacher")
        r = client.post(f"/instructor/problems/{pid}/regrade", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/instructor/problems/{pid}/regrade"
        assert 'data-status="running"' in client.get(r.headers["location"]).text
        wait_regrade(client, pid, teacher)
        html = client.get(r.headers["location"]).text
        assert "2 Submit attempts graded again" in html and "0 changed verdict" in html
        with app.state.session_factory() as session:
            assert recorded_flips(session, pid) == []

    # The job lives in the database, not in the server's memory: a new process (a restart) reads the same;
    # a job left running by a runner that stopped sending heartbeats reads as interrupted, not running for ever.
    fresh = RegradeJobs(app.state.session_factory, app.state.grader)
    again = fresh.get(pid)
    assert again is not None and (again.status, again.total, again.done) == ("done", 2, 2)
    with app.state.session_factory() as session:
        session.add(RegradeJob(problem_id=IDS[1], status="running", phase="grading", total=10, done=3,
                               runner="gone:1", heartbeat_at=utcnow() - timedelta(seconds=STALE_S + 1)))
        session.commit()
    stale = fresh.get(IDS[1])
    assert stale is not None and (stale.status, stale.done, stale.total) == ("interrupted", 3, 10), stale


def wait_regrade(client: TestClient, pid: str, headers: dict[str, str], timeout: float = 240) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, object] = client.get(f"{API}/instructor/problems/{pid}/regrade", headers=headers).json()
        if body["status"] != "running":
            return body
        time.sleep(0.3)
    raise AssertionError(f"regrade of {pid} not done within {timeout} s")


@pytest.mark.slow
@pytest.mark.xdist_group("web-grading")
def test_upload_with_check_grades_the_reference_and_known_mistakes(iclient: TestClient, teacher: dict[str, str],
                                                                   problems_dir: Path) -> None:
    # A known mistake identical to the reference: the schema is fine, `gradax check` is not.
    bad = problem_yaml("cc-double", **{"          return x + 2": "          return x * 2"})
    r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                     json={"yaml": bad, "reference": reference("cc-double"), "check": True})
    assert r.status_code == 422 and r.json()["checked"] is True
    [error] = [e for e in r.json()["errors"] if "'plus-two' passes every test" in e["message"]]
    # located like schema errors: the file and the line of the known mistake's entry (`- id: plus-two`)
    assert (error["file"], error["line"]) == ("problem.yaml", bad.splitlines().index("  - id: plus-two") + 1), error
    assert not (problems_dir / "cc-double.yaml").exists()
    r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                     json={"yaml": problem_yaml("cc-double"), "reference": reference("cc-double"), "check": True})
    assert r.status_code == 201 and r.json()["checked"] is True, r.json()


def test_queue_workers_pick_up_reloaded_and_uploaded_problems(iapp: FastAPI, iclient: TestClient,
                                                              problems_dir: Path, teacher: dict[str, str]) -> None:
    """A `gradax worker` started before an instructor's reload or upload grades the new version, not stale
    tests (it shares the problems directory and follows the problem table)."""
    import app.grading.worker as worker_module
    from app.grading.worker import WorkerContext, current_problem
    from graders.engine import Grader
    from graders.problem import ProblemBank

    ctx = WorkerContext(iapp.state.settings, iapp.state.engine, iapp.state.session_factory,
                        Grader(ProblemBank(problems_dir)), dispatcher=None, name="test")  # type: ignore[arg-type]
    before = current_problem(ctx, IDS[0])
    assert before is not None and ctx.last_reload == float("-inf")  # in step: no reload
    ref = problems_dir.parent / "reference_solutions" / f"{IDS[0].replace('-', '_')}.py"
    ref.write_text(ref.read_text().replace("* 2", "* 3"))
    assert current_problem(ctx, IDS[0]) is before  # the server has not reloaded: the table still agrees
    iclient.post(f"{API}/problems/reload", headers=teacher)
    after = current_problem(ctx, IDS[0])
    assert after is not None and after.content_hash != before.content_hash and b"* 3" in after.reference_source

    r = iclient.post(f"{API}/instructor/problems", headers=teacher,
                     json={"yaml": problem_yaml("cc-double"), "reference": reference("cc-double")})
    assert r.status_code == 201
    assert current_problem(ctx, "cc-double") is None  # reloads are rate-limited per worker...
    ctx.last_reload -= worker_module.RELOAD_MIN_INTERVAL_S
    assert current_problem(ctx, "cc-double") is not None  # ...and then it is found
