"""Hostile input and other people's data: HTML is escaped wherever it is shown, nobody reads what is not
theirs, a full backlog says 503 with Retry-After, and a graceful stop leaves unfinished gradings queued."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from api.helpers import API, ROOT_PROBLEMS, make_settings, register
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.grading.inprocess_dispatcher import InProcessDispatcher
from app.main import create_app
from app.models import Attempt, GradingClaim
from graders.executor import ColdExecutor
from graders.problem import LoadedProblem, ProblemBank
from graders.sandbox import ChildOutcome, SandboxLimits

PID = "nnx-module-basics"
SCRIPT = "<script>alert(1)</script>"
CODE_ATTACK = 'x = "</textarea></script><script>alert(1)</script><img src=x onerror=alert(2)>"\n'


@pytest.fixture(scope="module")
def bank() -> ProblemBank:
    return ProblemBank(ROOT_PROBLEMS)


@pytest.fixture
def app(tmp_path: Path, data_dir: Path, bank: ProblemBank) -> FastAPI:
    return create_app(make_settings(tmp_path, data_dir, max_backlog=3), bank=bank)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def form_csrf(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def page_login(client: TestClient, username: str) -> str:
    """Log in through the form (session cookie); returns the page's CSRF token for JSON calls."""
    from api.helpers import PASSWORD

    r = client.post("/login", data={"username": username, "password": PASSWORD,
                                    "csrf_token": form_csrf(client, "/login")}, follow_redirects=False)
    assert r.status_code == 303
    match = re.search(r'"csrf": "([^"]+)"', client.get(f"/problems/{PID}").text)
    assert match
    return match.group(1)


def assert_escaped(html: str, raw: str = SCRIPT) -> None:
    assert raw not in html, "raw markup reached the page"
    assert "<script>alert" not in html and "onerror=alert" not in html.replace("\\u003c", "<").split("<img")[0]


def test_html_in_usernames_is_refused_and_echoed_escaped(client: TestClient) -> None:
    r = client.post(f"{API}/auth/register", json={"username": SCRIPT, "password": "long enough password"})
    assert r.status_code == 422
    # The register and login forms echo what was typed: escaped.
    r = client.post("/register", data={"username": SCRIPT, "password": "long enough password",
                                       "csrf_token": form_csrf(client, "/register")})
    assert r.status_code == 422
    assert SCRIPT not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    r = client.post("/login", data={"username": SCRIPT, "password": "whatever password",
                                    "csrf_token": form_csrf(client, "/login")})
    assert r.status_code == 401
    assert SCRIPT not in r.text and "&lt;script&gt;" in r.text


def test_html_in_urls_is_escaped_on_error_pages(client: TestClient) -> None:
    payload = "<img src=x onerror=alert(1)>"  # no "/": it must reach the problem route, which echoes the id
    r = client.get(f"/problems/{payload}", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert payload not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    r = client.get(f"/login?next={SCRIPT}")
    assert SCRIPT not in r.text


def test_html_in_code_and_drafts_never_reaches_a_page_as_markup(client: TestClient) -> None:
    register(client, "mallory")
    csrf = page_login(client, "mallory")
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE_ATTACK},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202
    attempt_id = r.json()["id"]
    # The problem page carries the draft inside <script type="application/json">: every < is \u003c there.
    html = client.get(f"/problems/{PID}").text
    assert "</textarea></script><script>" not in html and "<img src=x" not in html
    assert "\\u003c/textarea\\u003e\\u003c/script\\u003e" in html
    # Attempt history and results come as JSON and are inserted with textContent (problem.js).
    r = client.get(f"{API}/submissions/{attempt_id}")
    assert r.headers["content-type"].startswith("application/json") and r.json()["code"] == CODE_ATTACK
    r = client.get(f"{API}/submissions?problem_id={PID}")
    assert r.headers["content-type"].startswith("application/json")
    script = (Path(__file__).resolve().parents[2] / "app" / "static" / "problem.js").read_text()
    # The page script sets innerHTML only from what the server renders and sanitises (nh3): hints and the
    # report's diagnosis.
    assert re.findall(r"\.innerHTML\s*=\s*([\w.]+)", script) == ["sub.diagnosis_html", "h"]
    assert "hints_html" in script


def test_nobody_reads_or_changes_what_is_not_theirs(client: TestClient) -> None:
    alice, bob = register(client, "alice"), register(client, "bob")
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": "# alice's secret\n"}, headers=alice)
    attempt_id = r.json()["id"]
    assert client.put(f"{API}/problems/{PID}/draft", json={"code": "# alice's draft\n"},
                      headers=alice).status_code == 204
    # Bob: someone else's attempt does not exist for him; her draft and attempts never show up in his views.
    assert client.get(f"{API}/submissions/{attempt_id}", headers=bob).status_code == 404
    assert client.get(f"{API}/submissions", headers=bob).json()["count"] == 0
    assert client.get(f"{API}/submissions?problem_id={PID}", headers=bob).json()["data"] == []
    assert client.get(f"{API}/problems/{PID}", headers=bob).json()["draft"] is None
    assert "alice" not in client.get(f"/problems/{PID}", headers=bob).text.split('"draft"')[1][:50]
    # Writing his own draft does not touch hers.
    client.put(f"{API}/problems/{PID}/draft", json={"code": "# bob\n"}, headers=bob)
    assert client.get(f"{API}/problems/{PID}", headers=alice).json()["draft"] == "# alice's draft\n"
    # Instructor-only routes refuse students.
    for method, path in [("post", f"{API}/problems/reload"), ("get", f"{API}/instructor/stats")]:
        assert getattr(client, method)(path, headers=bob).status_code in (403, 404)
    # Without credentials: 401, never someone's data.
    assert client.get(f"{API}/submissions/{attempt_id}").status_code == 401


def test_cookie_posts_without_the_csrf_header_are_refused(client: TestClient) -> None:
    register(client, "carol")
    csrf = page_login(client, "carol")
    for method, path, body in [("post", f"{API}/submissions", {"problem_id": PID, "code": "x = 1\n"}),
                               ("put", f"{API}/problems/{PID}/draft", {"code": "x = 1\n"}),
                               ("post", f"{API}/problems/{PID}/hints", None)]:
        r = client.request(method.upper(), path, json=body)
        assert r.status_code == 403, (path, r.text)
        r = client.request(method.upper(), path, json=body, headers={"X-CSRF-Token": "forged" + csrf[6:]})
        assert r.status_code == 403, (path, r.text)
    assert client.post(f"{API}/submissions", json={"problem_id": PID, "code": "x = 1\n"},
                       headers={"X-CSRF-Token": csrf}).status_code == 202


def test_a_full_backlog_is_503_with_retry_after_and_stores_nothing(app: FastAPI, client: TestClient) -> None:
    users = [register(client, f"deadline{i}") for i in range(4)]
    for headers in users[:3]:  # GRADAX_MAX_BACKLOG=3, nothing grades (workers 0): the backlog fills
        assert client.post(f"{API}/submissions", json={"problem_id": PID, "code": "x = 1\n"},
                           headers=headers).status_code == 202
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": "x = 1\n"}, headers=users[3])
    assert r.status_code == 503
    assert 1 <= int(r.headers["Retry-After"]) <= 120 and "retry in" in r.json()["detail"]
    with app.state.session_factory() as session:
        assert len(session.scalars(select(Attempt.id)).all()) == 3
    # Once the backlog drains below the bound, submissions are taken again.
    with app.state.session_factory() as session:
        first = session.scalars(select(Attempt).order_by(Attempt.id)).first()
        assert first is not None
        first.status = "done"
        session.commit()
    assert client.post(f"{API}/submissions", json={"problem_id": PID, "code": "x = 1\n"},
                       headers=users[3]).status_code == 202


class StuckExecutor(ColdExecutor):
    """A grading that does not finish until released: what a graceful stop finds in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def grade(self, problem: LoadedProblem, request: bytes, limits: SandboxLimits) -> ChildOutcome:
        self.started.set()
        self.release.wait(30)
        raise OSError("sandbox went away during shutdown")


def test_graceful_stop_puts_unfinished_gradings_back_in_the_queue(app: FastAPI, client: TestClient) -> None:
    alice = register(client, "alice")
    attempt_id = client.post(f"{API}/submissions", json={"problem_id": PID, "code": "x = 1\n"},
                             headers=alice).json()["id"]
    grader = app.state.grader
    stuck = StuckExecutor()
    original, grader.executor = grader.executor, stuck
    try:
        dispatcher = InProcessDispatcher(app.state.session_factory, grader, workers=1, retries=2)
        dispatcher.start()
        assert stuck.started.wait(30)
        started = time.monotonic()
        assert dispatcher.stop(timeout=0.5) == 1
        assert time.monotonic() - started < 5
        with app.state.session_factory() as session:
            attempt = session.get(Attempt, attempt_id)
            assert attempt is not None and attempt.status == "queued" and attempt.claim_token is None
            outcomes = session.scalars(select(GradingClaim.outcome).where(GradingClaim.attempt_id == attempt_id))
            assert list(outcomes) == ["interrupted"]
        # The interrupted grading ends later (here with a grader failure): its write is fenced out, so the
        # attempt stays queued for the next start instead of getting a result or a retry from a dead claim.
        stuck.release.set()
        deadline = time.monotonic() + 30
        while dispatcher._held and time.monotonic() < deadline:  # the grading thread is done with it
            time.sleep(0.05)
        assert not dispatcher._held
        with app.state.session_factory() as session:
            attempt = session.get(Attempt, attempt_id)
            assert attempt is not None and attempt.status == "queued" and attempt.report is None
            assert attempt.tries == 1
            assert list(session.scalars(select(GradingClaim.outcome))) == ["interrupted"]
    finally:
        stuck.release.set()
        grader.executor = original


@pytest.mark.parametrize("markdown", [
    "Compute it.\n\n<script>alert(1)</script>",
    '<img src=x onerror="alert(1)"> and <a href="javascript:alert(1)">a link</a>',
    "[click](javascript:alert(1)) <iframe src=//evil.example></iframe> <svg onload=alert(1)>",
])
def test_html_and_js_in_statements_and_hints_are_sanitised(markdown: str) -> None:
    """Statements and hints are instructor Markdown rendered to HTML shown as-is: scripts must not survive."""
    from app.services.problems import render_inline, render_statement

    class Elements(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.found.append((tag, attrs))

    for html in (render_statement(markdown), render_inline(markdown)):
        parser = Elements()
        parser.feed(html)
        for tag, attrs in parser.found:  # what a browser would build from it, not the escaped text
            assert tag not in ("script", "iframe", "svg", "img", "object", "embed", "style"), html
            for name, value in attrs:
                assert not name.startswith("on"), html
                assert not (value or "").strip().lower().startswith("javascript:"), html
    assert "alert(1)" not in "".join(str(a) for _, a in parser.found)
