"""An instructor runs a course in a real browser: creates it, enrols two students from a roster, sets a deadline
(typed in New York time), one student submits late and loses 20 %, the other's score is overridden with a
comment he then reads, and the gradebook CSV files hold exactly that. Real server, real grading."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from live_server import running_server, server_env
from playwright.sync_api import expect

from browser.test_student_flow import GRADING_TIMEOUT_MS, replace_code

ROOT = Path(__file__).resolve().parents[2]
PID = "nnx-module-basics"
PROBLEM = yaml.safe_load((ROOT / "problems" / f"{PID}.yaml").read_text())
WRONG = next(m for m in PROBLEM["known_mistakes"] if m["id"] == "no-scaling")["code"]
RIGHT = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()
PASSWORD = "a long enough password"
VIEWER_TZ = "America/New_York"
COMMENT = "Right idea, the scaling is missing: 7 of 10."

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("web-grading")]


@pytest.fixture
def course_server(tmp_path: Path, data_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A server whose course files are in a scratch folder (the new course is written there, not into the repo),
    and its environment (for `gradax user create` on the same database)."""
    # The warm pool unless told otherwise: two real gradings stay well inside the problem's time limit even on a
    # machine loaded far past its cores (cold starts there hit it: seen at load 20 on 2 cores).
    extra = {"GRADAX_COURSES_DIR": str(tmp_path / "courses"),
             "GRADAX_POOL": os.environ.get("GRADAX_BROWSER_POOL", "warm")}
    (tmp_path / "courses").mkdir()
    with running_server(tmp_path, data_dir, **extra) as base:
        yield base, server_env(tmp_path, data_dir, **extra)


def make_account(env: dict[str, str], username: str, role: str) -> None:
    gradax = Path(sys.executable).parent / "gradax"
    proc = subprocess.run([str(gradax), "user", "create", username, "--role", role, "--password-stdin"],
                          input=PASSWORD + "\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr


def log_in(browser, server: str, username: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 900}, timezone_id=VIEWER_TZ,
                                  accept_downloads=True)
    page = context.new_page()
    page.goto(server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")
    return context, page


def submit(page, server: str, code: str) -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    replace_code(page, code)
    page.click("#submit-button")
    page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
    return str(page.locator("#verdict").inner_text())


def rows(text: str) -> dict[str, dict[str, str]]:
    return {row["username"]: row for row in csv.DictReader(io.StringIO(text))}


def test_instructor_runs_a_course(course_server: tuple[str, dict[str, str]], browser,  # type: ignore[no-untyped-def]
                                  artifacts: Path, tmp_path: Path) -> None:
    server, env = course_server
    make_account(env, "prof", "instructor")
    for name in ("alice", "bob"):
        make_account(env, name, "student")
    prof_ctx, prof = log_in(browser, server, "prof")
    errors: list[str] = []
    prof.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # create the course
        prof.click("a[href='/courses']")
        prof.fill("[data-testid=create-course-form] input[name=course_id]", "nnx-spring")
        prof.fill("[data-testid=create-course-form] input[name=title]", "Flax NNX, spring term")
        prof.fill("[data-testid=create-course-form] input[name=timezone]", "Europe/Zurich")
        prof.click("[data-testid=create-course-form] button[type=submit]")
        prof.wait_for_url(f"{server}/courses/nnx-spring?*")
        assert (tmp_path / "courses" / "nnx-spring" / "course.yaml").is_file()
        # enrol two students from a roster
        prof.fill("[data-testid=roster-form] textarea[name=roster_text]", "username\nalice\nbob\n")
        prof.click("[data-testid=roster-form] button[type=submit]")
        expect(prof.locator("[data-testid=message]")).to_contain_text("2 enrolled")
        expect(prof.locator("[data-testid=members] [data-member]")).to_have_count(3)
        prof.screenshot(path=str(artifacts / "course-roster.png"), full_page=True)

        # set the deadline: due two hours ago, late work until in two days, -20 % per started day; typed in the
        # browser's own time zone (New York), stored in UTC
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        due, late_until = now - timedelta(hours=2), now + timedelta(days=2)
        local = ZoneInfo(VIEWER_TZ)
        prof.click("[data-testid=new-assignment-link]")
        form = prof.locator("[data-testid=assignment-form]")
        form.locator("input[name=slug]").fill("hw1")
        form.locator("input[name=title]").fill("Homework 1")
        form.locator("textarea[name=problems]").fill(f"{PID} 10")
        form.locator("input[name=due]").fill(due.astimezone(local).strftime("%Y-%m-%dT%H:%M"))
        form.locator("input[name=late_until]").fill(late_until.astimezone(local).strftime("%Y-%m-%dT%H:%M"))
        form.locator("select[name=penalty_kind]").select_option("per_day")
        form.locator("input[name=penalty_value]").fill("20%")
        prof.screenshot(path=str(artifacts / "course-assignment-form.png"), full_page=True)
        form.locator("button[type=submit]").click()
        expect(prof.locator("[data-testid=message]")).to_contain_text("Assignment hw1 saved")
        due_utc = due.strftime("%Y-%m-%dT%H:%M:00Z")
        assert prof.locator(f"[data-assignment=hw1] time[datetime='{due_utc}']").count() == 1
        written = yaml.safe_load((tmp_path / "courses" / "nnx-spring" / "assignments" / "hw1.yaml").read_text())
        assert written["due"] == due.astimezone(ZoneInfo("Europe/Zurich")).strftime("%Y-%m-%d %H:%M")

        # alice submits a correct solution, late
        alice_ctx, alice = log_in(browser, server, "alice")
        try:
            alice.goto(f"{server}/problems/{PID}")
            expect(alice.locator("[data-testid=assignment-banner]")).to_contain_text("Part of Homework 1")
            submitted_at = datetime.now(UTC)
            assert submit(alice, server, RIGHT) == "Accepted"
            alice.goto(f"{server}/courses/nnx-spring")
            expect(alice.locator("[data-assignment=hw1] [data-testid=standing]")).to_have_text(
                "8/10, submitted 2 h late, -20 %")
            alice.screenshot(path=str(artifacts / "course-student-late.png"), full_page=True)
        finally:
            alice_ctx.close()

        # bob submits a wrong solution (late too); the instructor reviews it and overrides his score
        bob_ctx, bob = log_in(browser, server, "bob")
        try:
            assert submit(bob, server, WRONG) == "Wrong answer"
            prof.goto(f"{server}/courses/nnx-spring/gradebook")
            prof.click("[data-student=bob] a")
            expect(prof.locator("[data-testid=late-flag]")).to_have_count(1)
            override = prof.locator(f"[data-problem='{PID}'] [data-testid=override-form]")
            override.locator("input[name=points]").fill("7")
            override.locator("input[name=comment]").fill(COMMENT)
            override.locator("button[type=submit]").first.click()
            expect(prof.locator("[data-testid=message]")).to_contain_text("overridden")
            expect(prof.locator(f"[data-problem='{PID}'] [data-testid=problem-points]")).to_have_text("7")
            prof.screenshot(path=str(artifacts / "course-review-override.png"), full_page=True)
            bob.goto(f"{server}/courses/nnx-spring")
            expect(bob.locator("[data-testid=override-comment]")).to_contain_text(COMMENT)
            bob.screenshot(path=str(artifacts / "course-student-override.png"), full_page=True)
        finally:
            bob_ctx.close()

        # the gradebook, and its CSV files as downloaded
        prof.goto(f"{server}/courses/nnx-spring/gradebook")
        prof.screenshot(path=str(artifacts / "course-gradebook.png"), full_page=True)
        with prof.expect_download() as download:
            prof.click("[data-testid=course-csv]")
        course = rows(Path(download.value.path()).read_text())
        assert set(course) == {"alice", "bob"}
        assert (course["alice"]["hw1"], course["alice"]["hw1 late"], course["alice"]["hw1 overridden"]) == (
            "8", "yes", "no")
        when = datetime.fromisoformat(course["alice"]["hw1 submitted_at"].replace("Z", "+00:00"))
        assert submitted_at - timedelta(seconds=5) <= when <= datetime.now(UTC)
        assert (course["bob"]["hw1"], course["bob"]["hw1 overridden"], course["bob"]["total"]) == ("7", "yes", "7")
        with prof.expect_download() as download:
            prof.click("[data-testid=csv-hw1]")
        hw1 = rows(Path(download.value.path()).read_text())
        assert (hw1["alice"][PID], hw1["alice"]["penalty"], hw1["alice"]["computed_points"]) == ("8", "0.2", "8")
        assert 2.0 <= float(hw1["alice"]["late_hours"]) < 3.0
        assert (hw1["bob"][PID], hw1["bob"]["override_comment"]) == ("7", f"{PID}: {COMMENT}")
        assert errors == []
    finally:
        prof_ctx.close()
