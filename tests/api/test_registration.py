"""GRADAX_REGISTRATION: who may create an account with a password (the API and the Register page).

"open" (the default) is what the rest of the suite uses; "invited" lets only a username or email a course roster
lists register; "closed" lets nobody, while accounts made by an instructor (`gradax user create`) still log in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.course_fixtures import People
from api.helpers import API, PASSWORD, csrf_from, login, make_settings, make_user
from app.core.config import Settings
from app.main import create_app
from app.models import Role, User
from app.services.users import REGISTRATION_BY_INVITATION, REGISTRATION_CLOSED
from graders.problem import ProblemBank

C = f"{API}/courses"


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path) -> Settings:
    """This module's servers let only invited people register (the course fixtures build on this)."""
    return make_settings(tmp_path, data_dir, registration="invited")


@pytest.fixture
def closed_app(settings: Settings, bank: ProblemBank) -> FastAPI:
    return create_app(settings.model_copy(update={"registration": "closed"}), bank=bank)


@pytest.fixture
def closed(closed_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(closed_app) as c:
        yield c


def accounts(app: FastAPI) -> set[str]:
    with app.state.session_factory() as session:
        return {u.username for u in session.query(User).all()}


def test_closed_registration_refuses_the_api_and_the_form_and_shows_no_way_to_register(
        closed_app: FastAPI, closed: TestClient) -> None:
    r = closed.post(f"{API}/auth/register", json={"username": "mallory", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["detail"] == REGISTRATION_CLOSED
    page = closed.get("/register")
    assert page.status_code == 200 and 'data-testid="registration-closed"' in page.text
    assert 'action="/register"' not in page.text  # no form to fill in
    token = csrf_from(closed.get("/login").text)
    r = closed.post("/register", data={"username": "mallory", "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 403 and "Registration is closed on this server" in r.text
    assert accounts(closed_app) == set()
    for path in ("/", "/login"):
        assert 'href="/register' not in closed.get(path).text, path
    # An account an instructor made (what `gradax user create` does) logs in and works as usual.
    make_user(closed_app, "carol", Role.STUDENT)
    assert closed.get(f"{API}/auth/me", headers=login(closed, "carol")).json()["username"] == "carol"


def test_invited_registration_admits_exactly_the_roster(course_app: FastAPI, course_client: TestClient,
                                                        people: People) -> None:
    r = course_client.post(f"{API}/auth/register", json={"username": "mallory", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["detail"] == REGISTRATION_BY_INVITATION
    roster = "username,email\ncarol,\n,dave@example.org\n"
    r = course_client.post(f"{C}/example/roster", json={"csv": roster}, headers=people.prof)
    assert r.status_code == 200 and r.json()["invited"] == ["carol", "dave@example.org"], r.text
    # The email typed without the link admits no one: anyone can type anyone's address.
    r = course_client.post(f"{API}/auth/register",
                           json={"username": "mallory", "password": PASSWORD, "email": "dave@example.org"})
    assert r.status_code == 403 and r.json()["detail"] == REGISTRATION_BY_INVITATION
    # A name the roster lists, and the link of an email it lists, register and are enrolled at once.
    assert course_client.post(f"{API}/auth/register",
                              json={"username": "carol", "password": PASSWORD}).status_code == 201
    links = {i["email"]: i["link"] for i in
             course_client.get(f"{C}/example/members", headers=people.prof).json()["invitations"] if i["email"]}
    token = links["dave@example.org"].rsplit("invite=", 1)[1]
    r = course_client.post(f"{API}/auth/register",
                           json={"username": "dave", "password": PASSWORD, "email": "other@example.org",
                                 "invitation": token})
    assert r.status_code == 422 and "this invitation is for dave@example.org" in r.json()["detail"]
    r = course_client.post(f"{API}/auth/register", json={"username": "dave", "password": PASSWORD,
                                                          "invitation": token})
    assert r.status_code == 201, r.text
    members = course_client.get(f"{C}/example/members", headers=people.prof).json()
    assert {"carol", "dave"} <= {m["username"] for m in members["data"]} and members["invitations"] == []
    # Each invitation admits one account: used, its link admits no second one.
    r = course_client.post(f"{API}/auth/register",
                           json={"username": "dave2", "password": PASSWORD, "invitation": token})
    assert r.status_code == 403
    # The page says how registration works here, and the form refuses the uninvited with the same message.
    page = course_client.get("/register").text
    assert 'data-testid="registration-invited"' in page and 'action="/register"' in page
    r = course_client.post("/register", data={"username": "mallory", "password": PASSWORD,
                                              "csrf_token": csrf_from(page)}, follow_redirects=False)
    assert r.status_code == 403 and "Registration here is by invitation" in r.text
    assert "mallory" not in accounts(course_app)
