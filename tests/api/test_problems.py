"""Problem routes: list with pagination and progress, detail without hidden data, hints, drafts, solution gate."""

from __future__ import annotations

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import API, ROOT_PROBLEMS, login, make_user
from app.models import Role
from app.services.problems import track_rank

PID = "nnx-module-basics"


def test_list_problems_anonymously_has_no_progress(app: FastAPI, client: TestClient) -> None:
    r = client.get(f"{API}/problems")
    assert r.status_code == 200
    body = r.json()
    ids = [p["id"] for p in body["data"]]
    assert PID in ids
    assert body["count"] == len(ids) == len(app.state.bank.problems)
    assert all(p["progress"] is None for p in body["data"])
    # ordered by track (the curriculum's order), then position within the track
    keys = [(track_rank(p["track"]), p["order"]) for p in body["data"]]
    assert keys == sorted(keys)
    assert body["data"][0]["track"] == "nnx-basics"


def test_list_problems_paginates(client: TestClient) -> None:
    full = client.get(f"{API}/problems").json()
    page = client.get(f"{API}/problems", params={"offset": 1, "limit": 2}).json()
    assert page["count"] == full["count"]
    assert page["offset"] == 1 and page["limit"] == 2
    assert [p["id"] for p in page["data"]] == [p["id"] for p in full["data"][1:3]]
    assert client.get(f"{API}/problems", params={"limit": 0}).status_code == 422
    assert client.get(f"{API}/problems", params={"offset": -1}).status_code == 422


def test_list_problems_by_track(client: TestClient) -> None:
    body = client.get(f"{API}/problems", params={"track": "nnx-basics"}).json()
    assert body["count"] >= 1
    assert {p["track"] for p in body["data"]} == {"nnx-basics"}


def test_list_problems_shows_the_callers_progress(client: TestClient, alice: dict[str, str]) -> None:
    client.post(f"{API}/submissions", json={"problem_id": PID, "code": "def f(): pass"}, headers=alice)
    body = client.get(f"{API}/problems", headers=alice).json()
    mine = {p["id"]: p["progress"] for p in body["data"]}
    assert mine[PID]["attempts"] == 1 and mine[PID]["solved"] is False
    assert all(p is not None for p in mine.values())


def test_problem_detail_has_statement_examples_and_no_hidden_data(client: TestClient) -> None:
    r = client.get(f"{API}/problems/{PID}")
    assert r.status_code == 200
    p = r.json()
    source = yaml.safe_load((ROOT_PROBLEMS / f"{PID}.yaml").read_text())
    assert p["signature"] == "def module_basics_forward(seed, x, features):"
    assert p["starter_code"] == source["starter_code"]
    assert "<h2>" in p["statement_html"] and "<script" not in p["statement_html"]
    assert [t["name"] for t in p["public_tests"]] == [t["name"] for t in source["tests"]["public"]]
    assert p["public_tests"][0]["args"] == {"seed": 0, "x": [1.0, 2.0, 3.0], "features": 4}
    assert p["hidden_tests"] == len(source["tests"]["hidden"])
    # nothing about hidden tests, known mistakes or the reference leaks
    for hidden in source["tests"]["hidden"]:
        assert hidden["name"] not in r.text
    assert "known_mistakes" not in r.text and "transposed-kernel" not in r.text
    assert p["solution"] is None and p["hints"] == [] and p["hints_total"] == len(source["hints"])


def test_unknown_problem_is_404(client: TestClient) -> None:
    r = client.get(f"{API}/problems/no-such-problem")
    assert r.status_code == 404
    assert r.json() == {"detail": "problem 'no-such-problem' not found"}


def test_hints_are_revealed_one_at_a_time(client: TestClient, alice: dict[str, str]) -> None:
    hints = yaml.safe_load((ROOT_PROBLEMS / f"{PID}.yaml").read_text())["hints"]
    assert client.post(f"{API}/problems/{PID}/hints").status_code == 401
    for n in range(1, len(hints) + 2):
        r = client.post(f"{API}/problems/{PID}/hints", headers=alice)
        assert r.status_code == 200
        body = r.json()
        assert body["hints"] == hints[:n] and body["hints_total"] == len(hints)
        assert len(body["hints_html"]) == len(body["hints"])
    assert "<code>rngs.params()</code>" in body["hints_html"][0]
    detail = client.get(f"{API}/problems/{PID}", headers=alice).json()
    assert detail["hints"] == hints and detail["progress"]["hints_revealed"] == len(hints)
    assert client.post(f"{API}/problems/nope/hints", headers=alice).status_code == 404


def test_draft_is_saved_and_returned(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    code = "def module_basics_forward(seed, x, features):\n    return x  # work in progress\n"
    assert client.put(f"{API}/problems/{PID}/draft", json={"code": code}).status_code == 401
    assert client.put(f"{API}/problems/{PID}/draft", json={"code": code}, headers=alice).status_code == 204
    assert client.get(f"{API}/problems/{PID}", headers=alice).json()["draft"] == code
    assert client.get(f"{API}/problems/{PID}", headers=bob).json()["draft"] is None
    assert client.put(f"{API}/problems/{PID}/draft", json={"code": "x" * 70_000}, headers=alice).status_code == 413
    assert client.put(f"{API}/problems/{PID}/draft", json={"text": code}, headers=alice).status_code == 422
    assert client.put(f"{API}/problems/nope/draft", json={"code": code}, headers=alice).status_code == 404


def test_solution_is_forbidden_before_solving(client: TestClient, alice: dict[str, str]) -> None:
    assert client.get(f"{API}/problems/{PID}/solution").status_code == 401
    r = client.get(f"{API}/problems/{PID}/solution", headers=alice)
    assert r.status_code == 403
    assert "solve the problem" in r.json()["detail"]
    assert client.get(f"{API}/problems/nope/solution", headers=alice).status_code == 404


def test_reload_is_for_instructors_only(app: FastAPI, client: TestClient, alice: dict[str, str]) -> None:
    assert client.post(f"{API}/problems/reload").status_code == 401
    r = client.post(f"{API}/problems/reload", headers=alice)
    assert r.status_code == 403
    assert r.json() == {"detail": "instructors and admins only"}
    make_user(app, "teacher", Role.INSTRUCTOR)
    before = client.get(f"{API}/problems").json()["count"]
    r = client.post(f"{API}/problems/reload", headers=login(client, "teacher"))
    assert r.status_code == 200
    stats = r.json()
    assert set(stats) == {"added", "updated", "unavailable", "errors"} and stats["unavailable"] == 0
    # (other people may be adding problem files while this runs; the table follows the disk)
    assert client.get(f"{API}/problems").json()["count"] == before + stats["added"] == len(app.state.bank.problems)
