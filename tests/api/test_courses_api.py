"""The courses API: creating and joining courses, rosters, assignments written as files, extensions and
overrides with who and when, the gradebook in JSON and CSV, instructor review, and who may do what."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.course_fixtures import People, grade, submit
from api.helpers import API, PASSWORD, login, register
from api.test_instructor import browser_login

C = f"{API}/courses"
PID = "nnx-module-basics"
HW1_DUE = datetime(2026, 3, 6, 22, 59, tzinfo=UTC)


def test_the_openapi_schema_names_the_course_routes(course_client: TestClient) -> None:
    paths = course_client.get("/openapi.json").json()["paths"]
    for needed in ("/api/v1/courses/{course_id}/assignments",
                   "/api/v1/courses/{course_id}/assignments/{slug}/extensions/{username}",
                   "/api/v1/courses/{course_id}/assignments/{slug}/overrides/{username}/{problem_id}",
                   "/api/v1/courses/{course_id}/gradebook", "/api/v1/courses/{course_id}/gradebook.csv",
                   "/api/v1/courses/{course_id}/assignments/{slug}/gradebook.csv"):
        assert needed in paths, needed
    assert "text/csv" in paths["/api/v1/courses/{course_id}/gradebook.csv"]["get"]["responses"]["200"]["content"]


def test_create_join_and_rotate(course_app: FastAPI, course_client: TestClient, courses_dir: Path,
                                people: People) -> None:
    r = course_client.post(C, json={"id": "dl-2027", "title": "Deep learning 2027", "timezone": "Europe/Zurich"},
                           headers=people.prof)
    assert r.status_code == 201, r.text
    code = r.json()["join_code"]
    assert yaml.safe_load((courses_dir / "dl-2027" / "course.yaml").read_text()) == {
        "title": "Deep learning 2027", "timezone": "Europe/Zurich"}
    assert course_client.post(C, json={"id": "dl-2027", "title": "again"}, headers=people.prof).status_code == 409
    assert course_client.post(C, json={"id": "mine", "title": "x"}, headers=people.alice).status_code == 403
    bad_zone = course_client.post(C, json={"id": "zz-course", "title": "x", "timezone": "Mars/Base"},
                                  headers=people.prof)
    assert bad_zone.status_code == 422 and "time zone" in bad_zone.text
    # non-members do not learn that the course exists; a join code makes alice a student
    assert course_client.get(f"{C}/dl-2027", headers=people.alice).status_code == 404
    assert course_client.post(f"{C}/join", json={"code": "NOPE1234"}, headers=people.alice).status_code == 404
    joined = course_client.post(f"{C}/join", json={"code": code.lower()[:4] + "-" + code.lower()[4:]},
                                headers=people.alice)
    assert joined.status_code == 200 and joined.json()["role"] == "student" and "join_code" not in joined.json()
    assert [c["id"] for c in course_client.get(C, headers=people.alice).json()["data"]] == ["dl-2027", "example"]
    assert course_client.get(f"{C}/dl-2027/gradebook", headers=people.alice).status_code == 403
    new = course_client.post(f"{C}/dl-2027/join-code", headers=people.prof).json()["join_code"]
    assert new != code
    assert course_client.post(f"{C}/join", json={"code": code}, headers=people.bob).status_code == 404


def test_roster_upload_enrols_invites_and_reports_bad_lines(course_app: FastAPI, course_client: TestClient,
                                                            people: People) -> None:
    register(course_client, "carol")
    roster = ("username,email,role\ncarol,,student\n,dave@example.org,\nerin,erin@example.org,ta\n"
              "frank,not-an-email,student\nbob,,student\n,,\n\"=cmd|x\",,\n")
    r = course_client.post(f"{C}/example/roster", json={"csv": roster}, headers=people.prof)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["added"], body["already"], body["invited"]) == (["carol"], ["bob"], ["dave@example.org"])
    assert body["errors"] == ["line 4: 'erin' has no account; staff (ta) must have one first",
                              "line 5: 'not-an-email' is not an email address",
                              "line 8: '=cmd|x' is not a username (3-32 letters, digits, '_.-')"]
    # dave registers through his invitation's link (its token) and is a student at once, with that email
    token = body["links"]["dave@example.org"].rsplit("invite=", 1)[1]
    r = course_client.post(f"{API}/auth/register", json={"username": "dave", "password": PASSWORD,
                                                          "invitation": token})
    assert r.status_code == 201, r.text
    again = course_client.post(f"{API}/auth/register", json={"username": "dave2", "password": PASSWORD,
                                                              "invitation": token})
    assert again.status_code == 404 and "was used already" in again.json()["detail"]
    members = course_client.get(f"{C}/example/members", headers=people.prof).json()
    roles = {m["username"]: (m["role"], m["source"]) for m in members["data"]}
    assert roles["carol"] == ("student", "roster") and roles["dave"] == ("student", "roster")
    assert roles["prof"][0] == "instructor" and members["invitations"] == []
    assert course_client.post(f"{C}/example/roster", json={"csv": "name\nx\n"},
                              headers=people.prof).status_code == 422
    assert course_client.post(f"{C}/example/roster", json={"csv": "username\nx\n"},
                              headers=people.alice).status_code == 403


def test_a_typed_email_gets_no_staff_role_from_a_roster(course_app: FastAPI, course_client: TestClient,
                                                        people: People) -> None:
    """Mallory registers with the email the roster gives a TA (anyone can type any address): the TA line does not
    make her staff. A student line by that email still enrols the account that typed it, and a TA named by
    username is staff as before."""
    for name, email in (("mallory", "ta.erin@example.org"), ("sam", "sam@example.org"), ("erin", None)):
        r = course_client.post(f"{API}/auth/register", json={"username": name, "password": PASSWORD, "email": email})
        assert r.status_code == 201, r.text
    roster = "username,email,role\n,ta.erin@example.org,ta\n,sam@example.org,student\nerin,,ta\n"
    r = course_client.post(f"{C}/example/roster", json={"csv": roster}, headers=people.prof)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] == ["line 2: 'ta.erin@example.org' is the unverified email of 'mallory'; staff (ta) are "
                              "named by username"]
    assert body["added"] == ["sam", "erin"]
    members = {m["username"]: m for m in course_client.get(f"{C}/example/members", headers=people.prof).json()["data"]}
    assert "mallory" not in members and members["erin"]["role"] == "ta"
    assert members["sam"]["role"] == "student" and members["sam"]["email_verified"] is False
    assert course_client.get(f"{C}/example/gradebook", headers=login(course_client, "mallory")).status_code == 404
    browser_login(course_client, "prof")
    assert "sam@example.org (unverified)" in course_client.get("/courses/example").text


def test_put_assignment_writes_the_file_and_validates_it(course_app: FastAPI, course_client: TestClient,
                                                         courses_dir: Path, people: People) -> None:
    body = {"title": "Quiz 1", "problems": [{"id": "nnx-embed", "points": 5}], "due": "2026-04-01T21:59:00Z",
            "late_until": "2026-04-03T21:59:00Z", "late_penalty": {"per_day": 0.1}}
    r = course_client.put(f"{C}/example/assignments/quiz1", json=body, headers=people.prof)
    assert r.status_code == 200, r.text
    assert r.json()["due"] == "2026-04-01T21:59:00Z"
    written = yaml.safe_load((courses_dir / "example" / "assignments" / "quiz1.yaml").read_text())
    # written in the course's time zone (Zurich is UTC+2 on 1 April), as an instructor would
    assert (written["due"], written["late_penalty"]) == ("2026-04-01 23:59", {"per_day": 0.1})
    clash = dict(body, problems=[{"id": "nnx-mlp", "points": 1}])
    r = course_client.put(f"{C}/example/assignments/quiz2", json=clash, headers=people.prof)
    assert r.status_code == 422 and "already in assignment 'hw2'" in r.text
    r = course_client.put(f"{C}/example/assignments/quiz2", json=dict(body, late_until="2026-03-01T00:00:00Z"),
                          headers=people.prof)
    assert r.status_code == 422 and "late_until must not be before due" in r.text
    assert not (courses_dir / "example" / "assignments" / "quiz2.yaml").exists()
    assert course_client.put(f"{C}/example/assignments/quiz3", json=body, headers=people.alice).status_code == 403
    # dates near datetime's limits would overflow when moved between zones: refused, not a server error
    for due in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        r = course_client.put(f"{C}/example/assignments/quiz3", json=dict(body, due=due), headers=people.prof)
        assert r.status_code == 422 and "outside the years" in r.text
        r = course_client.put(f"{C}/example/assignments/hw1/extensions/alice", json={"due": due},
                              headers=people.prof)
        assert r.status_code == 422 and "outside the years" in r.text
    listed = course_client.get(f"{C}/example/assignments", headers=people.alice).json()["data"]
    assert [a["id"] for a in listed] == ["hw1", "hw2", "quiz1"]


def submit_at(client: TestClient, app: FastAPI, username: str, when: datetime, score: float) -> int:
    with time_machine.travel(when, tick=False):
        attempt = submit(client, login(client, username), PID)
    grade(app, attempt, score)
    return attempt


def test_extensions_overrides_gradebook_and_review(course_app: FastAPI, course_client: TestClient,
                                                   people: People) -> None:
    late = submit_at(course_client, course_app, "bob", HW1_DUE + timedelta(hours=2), 1.0)
    submit_at(course_client, course_app, "alice", HW1_DUE - timedelta(days=1), 0.5)
    hw1 = f"{C}/example/assignments/hw1"
    # bob's standing as he sees it
    mine = course_client.get(hw1, headers=people.bob).json()
    assert (mine["points"], mine["max_points"], mine["late"], mine["standing"]) == (
        8.0, 20.0, True, "8/20, submitted 2 h late, -20 %")
    # staff extension for bob: who and when are recorded; his Submit is on time now
    r = course_client.put(f"{hw1}/extensions/bob", json={"days": 1, "reason": "flu"}, headers=people.prof)
    assert r.status_code == 200, r.text
    assert (r.json()["due"], r.json()["granted_by"], r.json()["source"]) == ("2026-03-07T22:59:00Z", "prof", "staff")
    exts = {e["username"]: e for e in course_client.get(f"{hw1}/extensions", headers=people.prof).json()["data"]}
    assert exts["alice"]["source"] == "file" and exts["bob"]["reason"] == "flu"
    assert course_client.get(hw1, headers=people.bob).json()["points"] == 10.0
    assert course_client.put(f"{hw1}/extensions/bob", json={"due": "2026-03-01T00:00:00Z"},
                             headers=people.prof).status_code == 422
    assert course_client.put(f"{hw1}/extensions/prof", json={"days": 1}, headers=people.prof).status_code == 404
    # override alice's 5 points with a comment; she sees it
    r = course_client.put(f"{hw1}/overrides/alice/{PID}", json={"points": 9, "comment": "fine on paper"},
                          headers=people.prof)
    assert r.status_code == 200, r.text
    assert (r.json()["previous_points"], r.json()["set_by"]) == (5.0, "prof")
    assert course_client.put(f"{hw1}/overrides/alice/{PID}", json={"points": 11, "comment": "x"},
                             headers=people.prof).status_code == 422
    assert course_client.put(f"{hw1}/overrides/alice/{PID}", json={"points": 3, "comment": "x"},
                             headers=people.alice).status_code == 403
    seen = course_client.get(hw1, headers=people.alice).json()
    [problem] = [p for p in seen["problems"] if p["id"] == PID]
    assert (seen["points"], problem["overridden"], problem["override_comment"]) == (9.0, True, "fine on paper")
    # the gradebook: JSON and CSV agree
    book = course_client.get(f"{C}/example/gradebook", headers=people.prof).json()
    by_name = {s["username"]: s["scores"]["hw1"] for s in book["students"]}
    assert (by_name["alice"]["points"], by_name["alice"]["overridden"]) == (9.0, True)
    assert (by_name["bob"]["points"], by_name["bob"]["late"]) == (10.0, False)
    r = course_client.get(f"{C}/example/gradebook.csv", headers=people.prof)
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert (rows["alice"]["hw1"], rows["alice"]["hw1 overridden"], rows["alice"]["total"]) == ("9", "yes", "9")
    assert (rows["bob"]["hw1"], rows["bob"]["hw1 late"], rows["bob"]["hw1 submitted_at"]) == (
        "10", "no", "2026-03-07T00:59:00Z")
    r = course_client.get(f"{hw1}/gradebook.csv", headers=people.prof)
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert (rows["alice"][PID], rows["alice"]["override_comment"], rows["alice"]["computed_points"]) == (
        "9", f"{PID}: fine on paper", "5")
    assert (rows["bob"]["extension_due"], rows["bob"]["late"]) == ("2026-03-07T22:59:00Z", "no")
    # review: every attempt with its timing; code on request
    r = course_client.get(f"{C}/example/students/bob", params={"code": "all"}, headers=people.prof)
    assert r.status_code == 200, r.text
    [hw1_review] = [a for a in r.json()["assignments"] if a["id"] == "hw1"]
    [attempt] = next(p for p in hw1_review["problems_review"] if p["id"] == PID)["attempts"]
    assert (attempt["id"], attempt["timing"], attempt["counted"], attempt["code"]) == (
        late, "on_time", True, "def f():\n    pass\n")
    assert course_client.get(f"{C}/example/students/bob", headers=people.alice).status_code == 403
    # removing the override keeps it in the history
    assert course_client.delete(f"{hw1}/overrides/alice/{PID}", headers=people.prof).status_code == 204
    history = course_client.get(f"{hw1}/overrides", headers=people.prof).json()["data"]
    assert [(h["points"], h["previous_points"]) for h in history] == [(None, 9.0), (9.0, 5.0)]
    assert course_client.get(hw1, headers=people.alice).json()["points"] == 5.0


def test_gradebook_csv_cells_a_spreadsheet_would_run_are_quoted(course_client: TestClient, people: People) -> None:
    """An email may start with '=' (or + - @): a spreadsheet opening the CSV would run it as a formula."""
    code = course_client.post(C, json={"id": "csv-safe", "title": "CSV"}, headers=people.prof).json()["join_code"]
    formula = "=HYPERLINK(\"http://evil.example\")@evil.example"
    r = course_client.post(f"{API}/auth/register", json={"username": "mallory", "password": PASSWORD,
                                                        "email": formula})
    assert r.status_code == 201, r.text
    mallory = login(course_client, "mallory")
    assert course_client.post(f"{C}/join", json={"code": code}, headers=mallory).status_code == 200
    r = course_client.get(f"{C}/csv-safe/gradebook.csv", headers=people.prof)
    [row] = [row for row in csv.DictReader(io.StringIO(r.text)) if row["username"] == "mallory"]
    assert row["email"] == "'" + formula.lower()  # emails are stored lower-cased
