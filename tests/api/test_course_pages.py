"""Course pages through the HTML forms (a browser's requests without the browser): the student's view, the
problem page's assignment line, the instructor's forms for assignments, roster, extensions and overrides, the
gradebook and the review with a diff. The real browser test is tests/browser/test_course_flow.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.course_fixtures import People, grade, submit
from api.helpers import csrf_from, login
from api.test_instructor import browser_login
from app.models import User

PID = "nnx-module-basics"
HW1_DUE = datetime(2026, 3, 6, 22, 59, tzinfo=UTC)


def submit_at(client: TestClient, app: FastAPI, username: str, when: datetime, score: float, code: str) -> int:
    with time_machine.travel(when, tick=False):
        attempt = submit(client, login(client, username), PID, code)
    grade(app, attempt, score)
    return attempt


def test_student_sees_assignments_standing_and_the_problem_banner(course_app: FastAPI, course_client: TestClient,
                                                                  people: People) -> None:
    submit_at(course_client, course_app, "bob", HW1_DUE + timedelta(hours=2), 1.0, "x = 1\n")
    browser_login(course_client, "bob")
    html = course_client.get("/courses/example").text
    assert '<td class="standing" data-testid="standing">8/20, submitted 2 h late, -20 %</td>' in html
    assert 'datetime="2026-03-06T22:59:00Z"' in html  # shown in the viewer's zone by localtime.js
    assert "join-code" not in html and "roster-form" not in html
    problem = course_client.get(f"/problems/{PID}").text
    assert 'data-testid="assignment-banner"' in problem and "Homework 1: modules and parameters" in problem
    assert '<span data-testid="banner-standing">8/20, submitted 2 h late, -20 %</span>' in problem
    assert course_client.get("/courses/example/gradebook").status_code == 403
    # practice without a course: a problem outside every assignment has no banner
    assert 'data-testid="assignment-banner"' not in course_client.get("/problems/nnx-embed").text


def test_instructor_forms_gradebook_and_review(course_app: FastAPI, course_client: TestClient,
                                               people: People) -> None:
    first = submit_at(course_client, course_app, "alice", HW1_DUE - timedelta(days=1), 0.5, "a = 1\nb = 2\n")
    second = submit_at(course_client, course_app, "alice", HW1_DUE - timedelta(hours=1), 0.5, "a = 1\nb = 3\n")
    token = browser_login(course_client, "prof")
    page = course_client.get("/courses/example").text
    assert re.search(r'data-testid="join-code">[A-Z2-9]{8}<', page)
    # a roster through the form
    r = course_client.post("/courses/example/roster", data={"csrf_token": token, "roster_text": "username\ncarol\n"},
                           follow_redirects=True)
    assert "1 invited" in r.text
    # a new assignment, dates typed in the viewer's time zone (New York: UTC-4 on 1 April)
    r = course_client.post("/courses/example/assignments", data={
        "csrf_token": token, "slug": "quiz1", "title": "Quiz 1", "problems": "nnx-embed 4\n",
        "due": "2026-04-01T18:00", "late_until": "2026-04-02T18:00", "penalty_kind": "factor",
        "penalty_value": "50%", "viewer_tz": "America/New_York"}, follow_redirects=True)
    assert "Assignment quiz1 saved" in r.text, r.text
    assert 'datetime="2026-04-01T22:00:00Z"' in r.text
    bad = course_client.post("/courses/example/assignments", data={
        "csrf_token": token, "slug": "quiz2", "title": "Q", "problems": "nnx-embed x\n", "due": "2026-04-01T18:00"},
        follow_redirects=True)
    assert "is not a number of points" in bad.text
    # an extension and an override through the review page's forms
    r = course_client.post("/courses/example/assignments/hw1/overrides", data={
        "csrf_token": token, "username": "alice", "problem_id": PID, "points": "9", "comment": "good reasoning"},
        follow_redirects=True)
    assert "overridden" in r.text and "good reasoning" in r.text
    r = course_client.post("/courses/example/assignments/hw1/extensions", data={
        "csrf_token": token, "username": "bob", "days": "3", "reason": "travel", "viewer_tz": "UTC"},
        follow_redirects=True)
    assert r.status_code == 200
    assert "Extension on hw1 saved" in r.text and "travel" in r.text
    missing_comment = course_client.post("/courses/example/assignments/hw1/overrides", data={
        "csrf_token": token, "username": "bob", "problem_id": PID, "points": "3", "comment": ""},
        follow_redirects=True)
    assert "say why in a comment" in missing_comment.text
    # review with a diff between alice's two attempts
    review = course_client.get(f"/courses/example/students/alice?a={first}&b={second}").text
    assert '<div class="del">-b = 2</div>' in review and '<div class="add">+b = 3</div>' in review
    assert 'data-testid="override-history"' in review
    book = course_client.get("/courses/example/gradebook").text
    assert 'data-student="alice"' in book and 'data-testid="overridden"' in book
    csv_text = course_client.get("/courses/example/assignments/hw1/gradebook.csv").text
    assert csv_text.splitlines()[0].startswith("username,email,nnx-module-basics,nnx-linear-bias,points")
    # the forms refuse a missing CSRF token and students
    assert course_client.post("/courses/example/roster", data={"roster_text": "username\nx\n"}).status_code == 403


def test_editing_an_assignment_in_the_browser_keeps_the_files_comments_and_layout(
        course_app: FastAPI, course_client: TestClient, people: People, courses_dir: Path) -> None:
    """The form changes the fields it shows; the instructor's comments, flow-style entries, extensions and the
    spelling of what did not change stay as written (the file is the course's source, kept in git)."""
    path = courses_dir / "example" / "assignments" / "hw1.yaml"
    before = path.read_text()
    token = browser_login(course_client, "prof")
    form = course_client.get("/courses/example/assignments/hw1/edit").text
    assert "Your first two NNX modules." in form  # the description is in the form, so saving keeps it
    r = course_client.post("/courses/example/assignments", data={
        "csrf_token": token, "slug": "hw1", "title": "Homework 1: modules and parameters",
        "description": "Your first two NNX modules. Each problem is worth 10 points.",
        "problems": "nnx-module-basics 12\nnnx-linear-bias 10\n", "opens": "2026-02-23T09:00",
        "due": "2026-03-07T23:59", "late_until": "2026-03-09T23:59", "penalty_kind": "per_day",
        "penalty_value": "20%", "viewer_tz": "Europe/Zurich"}, follow_redirects=True)
    assert "Assignment hw1 saved" in r.text, r.text
    after = path.read_text()
    for line in before.splitlines():
        if line.startswith("#") or line.startswith("  - {student") or line.startswith("title") or "linear-bias" in line:
            assert line in after.splitlines(), (line, after)
    assert "due: 2026-03-07 23:59" in after and "due: 2026-03-06 23:59" not in after
    assert "  - {id: nnx-module-basics, points: 12}" in after
    assert "late_penalty: {per_day: 0.2}" in after
    assert len(after.splitlines()) == len(before.splitlines())
    hw1 = course_client.get("/api/v1/courses/example/assignments/hw1", headers=people.prof).json()
    assert hw1["problems"][0]["points"] == 12 and hw1["due"].startswith("2026-03-07T22:59")


def test_registering_through_an_invitation_link_enrols(course_app: FastAPI, course_client: TestClient,
                                                        people: People) -> None:
    """The roster's email line becomes a link; the Register page opened through it names the course and the
    address, and the account made there joins the course with that email, verified. Typing the address into the
    plain form (Mallory, before Erin) takes nothing."""
    r = course_client.post("/api/v1/courses/example/roster", json={"csv": "email\nerin@example.org\n"},
                           headers=people.prof)
    assert r.json()["invited"] == ["erin@example.org"]
    link = r.json()["links"]["erin@example.org"]
    path = link.removeprefix(str(course_client.base_url))
    assert path.startswith("/register?invite=")
    browser_login(course_client, "prof")  # the course page shows the link to its staff
    staff_page = course_client.get("/courses/example").text
    assert f'data-testid="invite-link">{link}<' in staff_page
    course_client.post("/logout", data={"csrf_token": csrf_from(staff_page)})
    token = re.search(r'name="csrf_token" value="([^"]+)"', course_client.get("/register").text)
    assert token is not None
    r = course_client.post("/register", data={"username": "mallory", "password": "correct horse battery",
                                              "email": "erin@example.org", "csrf_token": token.group(1),
                                              "next": "/courses"}, follow_redirects=True)
    assert r.status_code == 200 and 'href="/courses/example"' not in r.text
    course_client.post("/logout", data={"csrf_token": csrf_from(course_client.get("/courses").text)})
    page = course_client.get(path).text
    assert 'data-testid="invitation"' in page and "erin@example.org" in page and 'name="email"' not in page
    invite = path.removeprefix("/register?invite=")
    r = course_client.post("/register", data={"username": "erin", "password": "correct horse battery",
                                              "invite": invite, "csrf_token": csrf_from(page), "next": "/courses"},
                           follow_redirects=True)
    assert r.status_code == 200 and 'href="/courses/example"' in r.text
    with course_app.state.session_factory() as session:
        erin = session.scalar(select(User).where(User.username == "erin"))
        mallory = session.scalar(select(User).where(User.username == "mallory"))
        assert erin is not None and (erin.email, erin.email_verified) == ("erin@example.org", True)
        assert mallory is not None and mallory.email is None  # the verified address left the account that typed it
    course_client.post("/logout", data={"csrf_token": csrf_from(course_client.get("/courses").text)})
    used = course_client.get(path).text  # a link is used once
    assert 'data-testid="invite-error"' in used and "was used already" in used
    token = re.search(r'name="csrf_token" value="([^"]+)"', course_client.get("/register").text)  # a new session
    assert token is not None
    bad = course_client.post("/register", data={"username": "fred", "password": "correct horse battery",
                                                "email": "not an email", "csrf_token": token.group(1)})
    assert bad.status_code == 422 and "not an email address" in bad.text


def test_course_pages_send_visitors_to_log_in_and_answer_errors_as_pages(course_client: TestClient,
                                                                        people: People) -> None:
    for path in ("/courses", "/courses/example", "/courses/example/gradebook", "/courses/example/students/alice"):
        r = course_client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=" + quote(path, safe=""), path
    token = browser_login(course_client, "prof")
    html = {"Accept": "text/html"}
    r = course_client.get("/courses/nope", headers=html)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "There is no course &#39;nope&#39;." in r.text
    r = course_client.post("/courses/example/assignments/nope/extensions", headers=html,
                           data={"csrf_token": token, "username": "alice", "days": "1"})
    assert r.status_code == 404 and "There is no assignment &#39;nope&#39; of course &#39;example&#39;." in r.text
    # The same errors in the API's words for a client that does not ask for HTML.
    assert course_client.get("/courses/nope").json() == {"detail": "course 'nope' not found"}
    browser_login(course_client, "bob")
    r = course_client.get("/courses/example/gradebook", headers=html)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
