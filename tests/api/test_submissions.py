"""Submission routes: queued before grading, limits (413/429/409), ownership (404), validation (400/422)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from small_bank import SmallBank, correct_answer
from sqlalchemy import update

from api.helpers import API, make_settings, register
from app.main import create_app
from app.models import Attempt, AttemptStatus, utcnow
from graders.problem import ProblemBank

PID = "nnx-module-basics"
CODE = "def module_basics_forward(seed, x, features):\n    return x\n"


def submit(client: TestClient, headers: dict[str, str], code: str = CODE, problem_id: str = PID,
           mode: str = "submit") -> int:
    r = client.post(f"{API}/submissions", json={"problem_id": problem_id, "code": code, "mode": mode}, headers=headers)
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def finish_all(app: FastAPI) -> None:
    """Mark every attempt graded, as the dispatcher would, so the next one is not refused with 409."""
    with app.state.session_factory() as session:
        session.execute(update(Attempt).values(status=AttemptStatus.DONE.value, verdict="wrong_answer",
                                               finished_at=utcnow()))
        session.commit()


def test_submission_is_stored_queued_and_readable(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE}, headers=alice)
    assert r.status_code == 202
    created = r.json()
    assert created["status"] == "queued"
    r = client.get(f"{API}/submissions/{created['id']}", headers=alice)
    assert r.status_code == 200
    body = r.json()
    assert body["problem_id"] == PID and body["code"] == CODE and body["mode"] == "submit"
    assert body["status"] == "queued" and body["verdict"] is None and body["report"] is None


def test_run_mode_is_recorded(client: TestClient, alice: dict[str, str]) -> None:
    attempt_id = submit(client, alice, mode="run")
    assert client.get(f"{API}/submissions/{attempt_id}", headers=alice).json()["mode"] == "run"
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE, "mode": "grade-everything"},
                    headers=alice)
    assert r.status_code == 422


def test_submitting_requires_authentication(client: TestClient) -> None:
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get(f"{API}/submissions").status_code == 401
    assert client.get(f"{API}/submissions/1").status_code == 401


def test_unknown_problem_is_404(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(f"{API}/submissions", json={"problem_id": "no-such-problem", "code": CODE}, headers=alice)
    assert r.status_code == 404
    assert r.json() == {"detail": "problem 'no-such-problem' not found"}


def test_another_users_attempt_is_404(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    attempt_id = submit(client, alice)
    r = client.get(f"{API}/submissions/{attempt_id}", headers=bob)
    assert r.status_code == 404
    assert r.json() == {"detail": f"submission {attempt_id} not found"}
    assert CODE not in r.text
    assert client.get(f"{API}/submissions/{attempt_id + 1000}", headers=alice).status_code == 404
    assert client.get(f"{API}/submissions", headers=bob).json()["count"] == 0


def test_nonnumeric_attempt_id_is_422(client: TestClient, alice: dict[str, str]) -> None:
    assert client.get(f"{API}/submissions/abc", headers=alice).status_code == 422


def test_an_id_past_what_the_database_holds_is_422_and_one_below_is_404(client: TestClient,
                                                                        alice: dict[str, str]) -> None:
    """Attempt ids are 32-bit INTEGER columns on PostgreSQL, which refused to compare one with 2**31 (a 500 there
    only; tests/service/test_api_postgres.py runs this again on PostgreSQL)."""
    assert client.get(f"{API}/submissions/{2**31 - 1}", headers=alice).status_code == 404
    for past in (2**31, 2**63, 10**30):
        r = client.get(f"{API}/submissions/{past}", headers=alice)
        assert r.status_code == 422 and "less than or equal to 2147483647" in r.text, (past, r.text)


def test_a_value_the_database_refuses_is_a_400_not_a_500(app: FastAPI, client: TestClient) -> None:
    """The net under every value a check missed: what PostgreSQL refuses and SQLite takes (a number past a
    column's range, text longer than its column) is the request's fault on both."""
    from sqlalchemy.exc import DataError

    def refused() -> None:
        raise DataError("UPDATE t SET v = %(v)s", {"v": "x" * 300}, Exception("value too long for type "
                                                                           "character varying(200)"))

    def refused_without_words() -> None:
        raise DataError("UPDATE t SET v = %(v)s", {"v": 1}, Exception(""))

    app.add_api_route("/api/v1/test-refused-value", refused)
    app.add_api_route("/api/v1/test-refused-value-without-words", refused_without_words)
    for path in ("/api/v1/test-refused-value", "/api/v1/test-refused-value-without-words"):
        r = client.get(path)
        assert r.status_code == 400 and r.json() == {"detail": "a value in the request is out of range for what "
                                                               "gradax stores"}, (path, r.text)


def test_list_own_attempts_newest_first_with_pagination(app: FastAPI, client: TestClient,
                                                         alice: dict[str, str], bob: dict[str, str]) -> None:
    ids = []
    for _ in range(3):
        ids.append(submit(client, alice))
        finish_all(app)
    submit(client, bob)
    finish_all(app)
    other = submit(client, alice, problem_id="nnx-linear-bias")
    body = client.get(f"{API}/submissions", headers=alice).json()
    assert body["count"] == 4
    assert [s["id"] for s in body["data"]] == [other, *reversed(ids)]
    assert "code" not in body["data"][0]  # summaries only
    page = client.get(f"{API}/submissions", params={"offset": 1, "limit": 2}, headers=alice).json()
    assert [s["id"] for s in page["data"]] == list(reversed(ids))[:2] and page["count"] == 4
    only = client.get(f"{API}/submissions", params={"problem_id": PID}, headers=alice).json()
    assert only["count"] == 3 and {s["problem_id"] for s in only["data"]} == {PID}
    assert client.get(f"{API}/submissions", params={"limit": 500}, headers=alice).status_code == 422


def test_code_over_the_size_cap_is_413(client: TestClient, alice: dict[str, str]) -> None:
    code = "# padding\n" * 7000  # 70,000 bytes > 64 KiB
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": code}, headers=alice)
    assert r.status_code == 413
    assert "limit is 65536 bytes" in r.json()["detail"]
    assert client.get(f"{API}/submissions", headers=alice).json()["count"] == 0


def test_huge_body_is_refused_before_parsing_with_413(client: TestClient, alice: dict[str, str]) -> None:
    body = b'{"problem_id": "nnx-module-basics", "code": "' + b"x" * 2_000_000 + b'"}'
    r = client.post(f"{API}/submissions", content=body, headers={**alice, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "request body larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: the cap applies to what is streamed
        for _ in range(40):
            yield b"x" * 65536

    r = client.post(f"{API}/submissions", content=chunks(), headers={**alice, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_malformed_bodies_are_400_or_422(client: TestClient, alice: dict[str, str]) -> None:
    headers = {**alice, "Content-Type": "application/json"}
    r = client.post(f"{API}/submissions", content=b'{"problem_id": "nnx-module-basics", "code": ', headers=headers)
    assert r.status_code == 400 and "malformed JSON" in r.json()["detail"]
    r = client.post(f"{API}/submissions", content=b"\xff\xfe not json", headers=headers)
    assert r.status_code == 400
    for body in ({"problem_id": PID}, {"code": CODE}, {"problem_id": PID, "code": 42},
                 {"problem_id": PID, "code": CODE, "extra": 1}, [1, 2, 3], "just a string"):
        r = client.post(f"{API}/submissions", json=body, headers=alice)
        assert r.status_code == 422, body
        assert isinstance(r.json()["detail"], list)
    # a lone surrogate is valid JSON but not text
    r = client.post(f"{API}/submissions", content=b'{"problem_id": "nnx-module-basics", "code": "\\ud800"}',
                    headers=headers)
    assert r.status_code == 400
    assert client.get(f"{API}/submissions", headers=alice).json()["count"] == 0


def test_one_active_attempt_per_user_and_problem(app: FastAPI, client: TestClient, alice: dict[str, str],
                                                 bob: dict[str, str]) -> None:
    first = submit(client, alice)
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE}, headers=alice)
    assert r.status_code == 409
    assert f"attempt {first}" in r.json()["detail"]
    submit(client, alice, problem_id="nnx-linear-bias")  # another problem is fine
    submit(client, bob)  # another user is fine
    finish_all(app)
    submit(client, alice)  # and once graded, the next one goes in


def test_the_database_itself_refuses_a_second_active_attempt(app: FastAPI, client: TestClient,
                                                             alice: dict[str, str]) -> None:
    """Two posts racing past the pre-check still cannot both be queued: the partial unique index stops one."""
    from sqlalchemy.exc import IntegrityError

    submit(client, alice)
    with app.state.session_factory() as session:
        first = session.query(Attempt).one()
        session.add(Attempt(user_id=first.user_id, problem_id=PID, mode="run", code=CODE, status="running"))
        with pytest.raises(IntegrityError):
            session.commit()


@pytest.fixture
def limited_app(tmp_path: Path, data_dir: Path, bank: ProblemBank) -> FastAPI:
    return create_app(make_settings(tmp_path, data_dir, submit_rate=3), bank=bank)


def test_rate_limit_is_429_with_retry_after(limited_app: FastAPI) -> None:
    with TestClient(limited_app) as client:
        alice, bob = register(client, "alice"), register(client, "bob")
        for _ in range(3):
            submit(client, alice)
            finish_all(limited_app)
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE}, headers=alice)
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert "at most 3 per minute" in r.json()["detail"]
        submit(client, bob)  # per user
        # once the oldest attempt leaves the window, alice may submit again
        with limited_app.state.session_factory() as session:
            oldest = session.query(Attempt).order_by(Attempt.id).first()
            assert oldest is not None
            oldest.created_at = oldest.created_at.replace(year=oldest.created_at.year - 1)
            session.commit()
        submit(client, alice)


def test_submission_updates_draft_and_attempt_count(client: TestClient, alice: dict[str, str]) -> None:
    submit(client, alice, code=CODE + "# mine\n", mode="run")
    detail = client.get(f"{API}/problems/{PID}", headers=alice).json()
    assert detail["draft"] == CODE + "# mine\n"
    assert detail["progress"]["attempts"] == 0  # Run does not count as an attempt at the problem


def test_instructors_may_read_any_attempt(app: FastAPI, client: TestClient, alice: dict[str, str]) -> None:
    from api.helpers import login, make_user
    from app.models import Role

    attempt_id = submit(client, alice)
    make_user(app, "teacher", Role.INSTRUCTOR)
    r = client.get(f"{API}/submissions/{attempt_id}", headers=login(client, "teacher"))
    assert r.status_code == 200 and r.json()["code"] == CODE


def _finish_later(app: FastAPI, attempt_id: int, after_s: float, notify: bool) -> threading.Thread:
    """Store a result from another thread, as a grading thread (notify) or another process (no notify) would."""

    def finish() -> None:
        time.sleep(after_s)
        with app.state.session_factory() as session:
            session.execute(update(Attempt).where(Attempt.id == attempt_id)
                            .values(status=AttemptStatus.DONE.value, verdict="accepted", finished_at=utcnow()))
            session.commit()
        if notify:
            app.state.completions.notify(attempt_id)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_long_poll_answers_when_the_wait_is_over(client: TestClient, alice: dict[str, str]) -> None:
    attempt_id = submit(client, alice)
    start = time.monotonic()
    r = client.get(f"{API}/submissions/{attempt_id}", params={"wait": 0.6}, headers=alice)
    elapsed = time.monotonic() - start
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert 0.55 <= elapsed < 5


def test_long_poll_answers_at_once_when_notified(app: FastAPI, client: TestClient, alice: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.state.settings, "long_poll_recheck_s", 60.0)  # only the notification can wake it
    attempt_id = submit(client, alice)
    finisher = _finish_later(app, attempt_id, 0.3, notify=True)
    start = time.monotonic()
    r = client.get(f"{API}/submissions/{attempt_id}", params={"wait": 20}, headers=alice)
    elapsed = time.monotonic() - start
    finisher.join()
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["verdict"] == "accepted"
    assert elapsed < 5
    assert app.state.completions.waiting() == 0  # nothing left registered


def test_long_poll_sees_a_result_stored_by_another_process(app: FastAPI, client: TestClient,
                                                           alice: dict[str, str]) -> None:
    attempt_id = submit(client, alice)
    finisher = _finish_later(app, attempt_id, 0.3, notify=False)  # e.g. a `gradax worker`: no notification
    start = time.monotonic()
    r = client.get(f"{API}/submissions/{attempt_id}", params={"wait": 20}, headers=alice)
    finisher.join()
    assert r.json()["status"] == "done" and time.monotonic() - start < 5


def test_long_poll_limits_and_ownership(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    attempt_id = submit(client, alice)
    assert client.get(f"{API}/submissions/{attempt_id}", params={"wait": 31}, headers=alice).status_code == 422
    assert client.get(f"{API}/submissions/{attempt_id}", params={"wait": -1}, headers=alice).status_code == 422
    start = time.monotonic()
    assert client.get(f"{API}/submissions/{attempt_id}", params={"wait": 10}, headers=bob).status_code == 404
    assert time.monotonic() - start < 5  # someone else's attempt is refused at once, not after the wait


def test_diagnosis_comes_as_sanitised_markdown_too(app: FastAPI, client: TestClient, alice: dict[str, str]) -> None:
    attempt_id = submit(client, alice)
    diagnosis = "Scale by `1 / sqrt(in_features)`, *not* by `in_features`.<script>alert(1)</script>"
    with app.state.session_factory() as session:
        session.execute(update(Attempt).where(Attempt.id == attempt_id).values(
            status=AttemptStatus.DONE.value, verdict="wrong_answer", finished_at=utcnow(),
            report={"verdict": "wrong_answer", "diagnosis": diagnosis, "tests": []}))
        session.commit()
    body = client.get(f"{API}/submissions/{attempt_id}", headers=alice).json()
    assert body["report"]["diagnosis"] == diagnosis  # the report itself is unchanged (version 1)
    assert body["diagnosis_html"] == ("Scale by <code>1 / sqrt(in_features)</code>, <em>not</em> by "
                                      "<code>in_features</code>.&lt;script&gt;alert(1)&lt;/script&gt;")


def test_runs_count_as_started_in_progress(app: FastAPI, client: TestClient, alice: dict[str, str]) -> None:
    for _ in range(3):
        submit(client, alice, mode="run")
        finish_all(app)
    listed = {p["id"]: p for p in client.get(f"{API}/problems", headers=alice).json()["data"]}
    assert listed[PID]["progress"]["runs"] == 3 and listed[PID]["progress"]["attempts"] == 0
    assert client.get(f"{API}/problems/{PID}", headers=alice).json()["progress"]["runs"] == 3
    assert client.get(f"{API}/problems/{PID}", headers=alice).json()["track_title"] == "NNX basics"


@pytest.mark.slow  # the small bank: prepared once per run by trusted processes (shared with other slow tests)
def test_a_waiting_attempt_shows_its_place_in_the_queue_and_an_estimate(tmp_path: Path, data_dir: Path,
                                                                        small_bank: SmallBank) -> None:
    """Three students wait for one grading slot (no grading threads here, so nothing starts unless the test
    claims it, as a grader would, through claims): places 1, 2, 3, each estimate longer than the one before;
    once the first is running the others move up; a finished attempt says done. The problem is prepared (the
    small bank), so none of them waits for its preparation."""
    from app.grading import claims
    from graders.report import Report, Verdict

    app = create_app(make_settings(tmp_path, data_dir, problems_dir=small_bank.problems_dir,
                                   courses_dir=small_bank.courses_dir))
    pid = small_bank.ids[0]
    assert not app.state.preparation.waits_for(pid)
    app.state.grading_slots = 1
    with TestClient(app) as client:
        users = [register(client, name) for name in ("alice", "bob", "carol")]
        ids = [submit(client, headers, correct_answer(pid), pid) for headers in users]

        def now(i: int) -> dict[str, object]:
            body: dict[str, object] = client.get(f"{API}/submissions/{ids[i]}", headers=users[i]).json()
            return body

        waiting = [now(i) for i in range(3)]
        assert [w["phase"] for w in waiting] == ["queued"] * 3
        assert [w["queue_position"] for w in waiting] == [1, 2, 3]
        estimates = [float(w["estimate_s"]) for w in waiting]  # type: ignore[arg-type]
        assert 0 < estimates[0] < estimates[1] < estimates[2]

        held = claims.claim(app.state.session_factory, ids[0], worker="test", lease_s=60)
        assert held is not None
        first = now(0)
        assert first["status"] == first["phase"] == "running" and first["queue_position"] is None
        assert [now(i)["queue_position"] for i in (1, 2)] == [1, 2]
        assert float(now(1)["estimate_s"]) > estimates[0]  # type: ignore[arg-type]  # behind the running one

        report = Report(problem=pid, verdict=Verdict.WRONG_ANSWER, mode="submit", total=1)
        finished = claims.finish(app.state.session_factory, held, report, problem_hash=None, retries=0)
        assert finished is claims.Finish.DONE
        done = now(0)
        assert done["phase"] == "done" and done["queue_position"] is None and done["estimate_s"] is None
        assert now(1)["queue_position"] == 1 and now(2)["queue_position"] == 2
