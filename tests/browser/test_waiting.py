"""What a student and an instructor see while they wait (issue 16), in a real Chromium against `gradax serve`.

One server for the module, started on a fresh data dir (its start must not race the sandbox's directories)
with a bank of two tiny problems, background preparation on, the warm pool, and one grading slot, so a second
submission queues behind the first:
- a submission for a problem version not prepared yet says "Preparing this problem (first use)", then its verdict;
- a submission behind another student's says its place in the queue and an estimate, then its verdict;
- a regrade shows done/total and a progress bar, and the same job after the page is reloaded.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import SharedServer, running_server, server_env
from playwright.sync_api import expect
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.models import Attempt, Role, User, utcnow
from browser.test_problem_page import login, replace_code
from graders.scaffold import REFERENCE, TEMPLATE, scaffold

# Its own server (module fixture) and tiny problems (5 CPU-s limits): a scheduling unit of its own.
pytestmark = [pytest.mark.browser, pytest.mark.slow]
IDS = ("wait-a", "wait-b")
LIMITS = "limits: {time_s: 5, memory_mb: 1024}\n"
GRADING_TIMEOUT_MS = 180_000
CLASS = 16  # finished Submits added before the regrade


def correct(problem_id: str) -> str:
    return f"import jax.numpy as jnp\n\n\ndef {problem_id.replace('-', '_')}(seed, x):\n    return jnp.asarray(x) * 2\n"


def problem_yaml(problem_id: str, note: str = "") -> str:
    text = TEMPLATE.format(id=problem_id, title=problem_id, function=problem_id.replace("-", "_")) + LIMITS
    return text.replace("Return `x * 2`.", f"Return `x * 2`.{note}")


@pytest.fixture(scope="module")
def waiting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    workdir = tmp_path_factory.mktemp("waiting-server")
    problems, courses = workdir / "problems", workdir / "courses"
    courses.mkdir()
    for problem_id in IDS:
        scaffold(problem_id, problems)
        (problems / f"{problem_id}.yaml").write_text(problem_yaml(problem_id))
    extra = {"GRADAX_PROBLEMS_DIR": str(problems), "GRADAX_COURSES_DIR": str(courses), "GRADAX_POOL": "warm",
             "GRADAX_PREPARE_IN_BACKGROUND": "true", "GRADAX_GRADING_WORKERS": "1"}
    data = workdir / "fresh-data"  # nothing prepared, no cache directories yet
    with running_server(workdir, data, **extra) as base:
        yield SharedServer(base, workdir, server_env(workdir, data, **extra))
    log = (workdir / "server.log").read_text()
    assert "Can't find source path" not in log and "could not restart" not in log, log[-3000:]


# Bearer tokens by (server, user): a poll that logged in on every call (every 0.2 s, up to 120 s while a slot is
# busy) could run into the server's login throttle (429) on a slow machine.
_TOKENS: dict[tuple[str, str], str] = {}


def api(server: SharedServer, method: str, path: str, username: str, body: Any = None) -> Any:
    token = _TOKENS.get((server.base, username))
    if token is None:
        token = _TOKENS[(server.base, username)] = server.token(username)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.base + "/api/v1" + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request) as r:
        return json.load(r)


def test_the_page_says_preparing_then_queued_with_its_place(waiting_server: SharedServer, browser,  # type: ignore[no-untyped-def]
                                                            artifacts: Path) -> None:
    server = waiting_server
    for name, role in (("w-teacher", "instructor"), ("w-student", "student"), ("w-other", "student")):
        server.create_user(name, role)
    context = browser.new_context()
    page = context.new_page()
    login(page, server, "w-student", f"/problems/{IDS[1]}")
    page.wait_for_selector(".cm-editor")
    replace_code(page, correct(IDS[1]))

    # The instructor publishes a new version of the problem just now, with a changed reference solution (a new
    # statement alone would need no preparation: the prepared outputs depend on what the trusted runs compute):
    # its first submission waits for it. The trusted caches make a tiny problem's preparation take about a
    # second; this reference takes a few more at import, as a real model's does, so the wait outlasts the page's
    # first look at the attempt on a busy machine too.
    reference = ("import time\n\ntime.sleep(3)  # a slow reference\n\n"
                 + REFERENCE.format(id=IDS[1], function=IDS[1].replace("-", "_")))
    uploaded = api(server, "POST", "/instructor/problems", "w-teacher",
                   {"yaml": problem_yaml(IDS[1], " (now with a note)"), "reference": reference, "replace": True})
    assert uploaded["sync"]["updated"] == 1, uploaded
    page.click("#submit-button")
    expect(page.locator("#status")).to_contain_text("Preparing this problem (first use)", timeout=30_000)
    assert "Running your code" not in page.locator("#status").inner_text()
    page.screenshot(path=str(artifacts / "waiting-preparing.png"), full_page=False)
    expect(page.locator("#verdict")).to_have_text("Accepted", timeout=GRADING_TIMEOUT_MS)

    # Another student's slow submission holds the one grading slot: this one is next in line, with an estimate.
    # Slow on the CPU, not asleep: beside a run idle for 2 s the server grades another attempt at once
    # (tests/reliability/test_idle_runs.py), and this one would not wait in line.
    slow = ("import time\n_end = time.process_time() + 3\nwhile time.process_time() < _end:\n    pass\n\n"
            + correct(IDS[0]))
    other = api(server, "POST", "/submissions", "w-other", {"problem_id": IDS[0], "code": slow})
    deadline = time.monotonic() + 120
    while api(server, "GET", f"/submissions/{other['id']}", "w-other")["status"] != "running":
        assert time.monotonic() < deadline, "the slow submission never started"
        time.sleep(0.2)
    page.goto(f"{server.base}/problems/{IDS[0]}")
    page.wait_for_selector(".cm-editor")
    replace_code(page, correct(IDS[0]))
    page.click("#submit-button")
    status = page.locator("#status")
    expect(status).to_contain_text("Queued: next in line, about", timeout=10_000)
    assert status.get_attribute("data-phase") == "queued"
    page.screenshot(path=str(artifacts / "waiting-queued.png"), full_page=False)
    expect(page.locator("#verdict")).to_have_text("Accepted", timeout=GRADING_TIMEOUT_MS)
    assert api(server, "GET", f"/submissions/{other['id']}", "w-other")["verdict"] == "accepted"
    context.close()


def add_graded_attempts(server: SharedServer, problem_id: str, count: int) -> int:
    """Finished Submits of `count` students, as a class leaves them before the instructor regrades (each
    sleeps a second at import: the regrade then lasts long enough to be watched, at no CPU cost). Returns how
    many finished Submits the problem has now."""
    code = "import time\ntime.sleep(1)\n\n" + correct(problem_id)
    engine = create_engine(server.env["GRADAX_DATABASE_URL"])
    with Session(engine) as session:
        for i in range(count):
            user = User(username=f"w-class-{i}", password_hash="not a hash: never logs in", role=Role.STUDENT.value)
            session.add(user)
            session.flush()
            session.add(Attempt(user_id=user.id, problem_id=problem_id, mode="submit", code=code, status="done",
                                verdict="wrong_answer", score=0.0, finished_at=utcnow()))
        session.commit()
        total = session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.problem_id == problem_id, Attempt.mode == "submit", Attempt.status == "done")) or 0
    engine.dispose()
    return total


def test_regrade_progress_survives_a_reload(waiting_server: SharedServer, browser, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    server = waiting_server
    server.create_user("w-regrader", "instructor")
    total = add_graded_attempts(server, IDS[0], CLASS)
    context = browser.new_context()
    page = context.new_page()
    login(page, server, "w-regrader", "/instructor")
    page.locator(f"form[action='/instructor/problems/{IDS[0]}/regrade'] button").click()
    page.wait_for_url(f"{server.base}/instructor/problems/{IDS[0]}/regrade")
    summary = page.locator("[data-testid=regrade-summary]")
    progress = page.locator("[data-testid=regrade-progress]")
    expect(summary).to_have_attribute("data-phase", "grading", timeout=120_000)
    assert summary.get_attribute("data-status") == "running"
    expect(progress).to_contain_text(f" of {total}")
    expect(page.locator("[data-testid=regrade-bar]")).to_have_attribute("max", str(total))
    expect(page.locator("[data-testid=regrade-eta]")).to_contain_text("s left", timeout=30_000)
    done_before = int(progress.inner_text().split(" of ")[0])
    page.screenshot(path=str(artifacts / "regrade-progress.png"), full_page=False)

    page.reload()  # the job lives in the database: the same job and its progress, not an empty page
    assert summary.get_attribute("data-status") == "running"
    assert int(progress.inner_text().split(" of ")[0]) >= done_before
    expect(progress).to_contain_text(f" of {total}")

    expect(summary).to_have_attribute("data-status", "done", timeout=GRADING_TIMEOUT_MS)
    expect(summary).to_contain_text(f"{total} Submit attempts graded again")
    expect(summary).to_contain_text(f"{CLASS} changed verdict")
    page.reload()
    expect(summary).to_contain_text(f"{total} Submit attempts graded again")
    context.close()
