"""U+0000 in anything a client sends is a 400 that says so, on every database, and loses nothing.

PostgreSQL cannot store NUL in text; SQLite can. Before app/db.py refused it for every statement, a NUL in a
form, a JSON field or a URL answered 500 on PostgreSQL only (tests/service/ runs these tests there too). The
TestClient raises what the app did not handle, so a 500 fails these tests.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.course_fixtures import People
from api.helpers import API, PASSWORD

PID = "nnx-module-basics"
C = f"{API}/courses"
NUL_SAID = "NUL character (U+0000)"


def test_code_with_a_nul_is_refused_with_its_line_and_nothing_is_stored(course_client: TestClient,
                                                                        people: People) -> None:
    code = "import jax\n\ndef module_basics_forward(seed, x, features):\n    return x\x00\n"
    r = course_client.post(f"{API}/submissions", json={"problem_id": PID, "code": code}, headers=people.alice)
    assert r.status_code == 400 and NUL_SAID in r.json()["detail"] and "line 4" in r.json()["detail"], r.text
    assert course_client.get(f"{API}/submissions", headers=people.alice).json()["count"] == 0
    r = course_client.put(f"{API}/problems/{PID}/draft", json={"code": code}, headers=people.alice)
    assert r.status_code == 400 and NUL_SAID in r.json()["detail"]
    # the draft saved before is still there
    assert course_client.put(f"{API}/problems/{PID}/draft", json={"code": "x = 1\n"},
                             headers=people.alice).status_code == 204
    assert course_client.put(f"{API}/problems/{PID}/draft", json={"code": "x\x00"},
                             headers=people.alice).status_code == 400
    assert course_client.get(f"{API}/problems/{PID}", headers=people.alice).json()["draft"] == "x = 1\n"


def test_a_nul_in_any_field_a_client_sends_is_a_400(course_client: TestClient, people: People) -> None:
    hw1 = f"{C}/example/assignments/hw1"
    sent = [
        course_client.post(f"{API}/auth/token", data={"username": "al\x00ice", "password": PASSWORD}),
        course_client.post(f"{API}/auth/token", data={"username": "alice", "password": PASSWORD + "\x00"}),
        course_client.post(f"{C}/join", json={"code": "ABCD\x001234"}, headers=people.alice),
        course_client.put(f"{C}/example/members/bo%00b", json={"role": "student"}, headers=people.prof),
        course_client.put(f"{hw1}/extensions/bob", json={"days": 1, "reason": "fl\x00u"}, headers=people.prof),
        course_client.put(f"{hw1}/overrides/alice/{PID}", json={"points": 3, "comment": "se\x00e me"},
                          headers=people.prof),
        course_client.get(f"{hw1}/gradebook.csv?username=al%00ice", headers=people.prof),
        course_client.get(f"{API}/submissions?problem_id={PID}%00", headers=people.alice),
    ]
    for r in sent:
        assert r.status_code < 500, (r.request.url, r.status_code, r.text)
        if r.status_code == 400:
            assert NUL_SAID in r.text, (r.request.url, r.text)
    # what reached the database (the extension and the override) was refused whole, and said why
    assert sent[4].status_code == sent[5].status_code == 400

    def bob_extension() -> list[str]:
        data = course_client.get(f"{hw1}/extensions", headers=people.prof).json()["data"]
        return [e["reason"] for e in data if e["username"] == "bob"]

    assert bob_extension() == []
    # and the same people get on with their work
    assert course_client.put(f"{hw1}/extensions/bob", json={"days": 1, "reason": "flu"},
                             headers=people.prof).status_code == 200
    assert bob_extension() == ["flu"]
