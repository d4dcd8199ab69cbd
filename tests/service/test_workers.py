"""Scale-out grading end to end: the API in celery mode on PostgreSQL, real Redis, real `gradax worker`
processes grading in the sandbox. Two workers at once, a worker killed mid-grading, Redis restarted."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from api.helpers import API, ROOT_PROBLEMS, register, wait_done
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_tls import TLS
from small_bank import SmallBank, correct_answer
from sqlalchemy import select

from app.main import create_app
from app.models import Attempt, AttemptTest, GradingClaim
from graders.problem import ProblemBank
from service.conftest import queue_settings, worker_env
from service.servers import Process, RedisServer, start_worker

pytestmark = [pytest.mark.service, pytest.mark.slow]

PID = "nnx-module-basics"
REFERENCE = (ROOT_PROBLEMS.parent / "reference_solutions" / "nnx_module_basics.py").read_text()
WRONG = next(m for m in yaml.safe_load((ROOT_PROBLEMS / f"{PID}.yaml").read_text())["known_mistakes"]
             if m["id"] == "no-scaling")["code"]
# Correct, but spends seconds at import: long enough to kill its worker mid-grading.
SLOW_REFERENCE = "import time\ntime.sleep(6)\n" + REFERENCE


@pytest.fixture
def queue_app(tmp_path: Path, data_dir: Path, bank: ProblemBank, pg_url: str, redis_server: RedisServer) -> FastAPI:
    if redis_server.proc is None:  # a test stopped it and failed before starting it again
        redis_server.start()
    _flush(redis_server)
    return create_app(queue_settings(tmp_path, data_dir, database_url=pg_url, redis_url=redis_server.url), bank=bank)


@pytest.fixture
def workers(queue_app: FastAPI, tmp_path: Path) -> Iterator[dict[str, Process]]:
    """Workers started by the test (by name), all stopped at its end."""
    running: dict[str, Process] = {}
    yield running
    for proc in running.values():
        proc.stop()


def _flush(redis_server: RedisServer) -> None:
    import redis

    redis.Redis.from_url(redis_server.url).flushall()


def _env(app: FastAPI) -> dict[str, str]:
    return worker_env(app.state.settings)


def submit(client: TestClient, headers: dict[str, str], code: str, problem_id: str = PID) -> int:
    r = client.post(f"{API}/submissions", json={"problem_id": problem_id, "code": code}, headers=headers)
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def claim_history(app: FastAPI, attempt_id: int) -> list[tuple[str, str | None]]:
    with app.state.session_factory() as session:
        rows = session.scalars(select(GradingClaim).where(GradingClaim.attempt_id == attempt_id)
                               .order_by(GradingClaim.id)).all()
        return [(r.worker, r.outcome) for r in rows]


def attempt_row(app: FastAPI, attempt_id: int) -> Attempt:
    with app.state.session_factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        return attempt


def stored_test_rows(app: FastAPI, attempt_id: int) -> int:
    with app.state.session_factory() as session:
        return session.query(AttemptTest).filter_by(attempt_id=attempt_id).count()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_two_workers_grade_concurrently_and_each_attempt_once(queue_app: FastAPI, workers: dict[str, Process],
                                                              tmp_path: Path) -> None:
    env = _env(queue_app)
    with TestClient(queue_app) as client:
        users = [register(client, f"student{i}") for i in range(4)]
        # Both workers up before the first message, so neither takes everything.
        for name in ("w1", "w2"):
            workers[name] = Process(["worker", "--name", name], env, tmp_path / f"worker-{name}.log")
        for proc in workers.values():
            proc.wait_for_log("ready.")
        expected: dict[int, str] = {}
        for i, headers in enumerate(users):
            code = REFERENCE if i % 2 == 0 else WRONG
            attempt_id = submit(client, headers, code)
            expected[attempt_id] = "accepted" if i % 2 == 0 else "wrong_answer"
            # The same message again, as a redelivery would: it must not grade twice.
            queue_app.state.dispatcher.submit(attempt_id)
        results = {a: wait_done(client, a, users[i], timeout=300) for i, a in enumerate(expected)}
    assert {a: r["verdict"] for a, r in results.items()} == expected
    rows = {a: attempt_row(queue_app, a) for a in expected}
    for attempt_id, row in rows.items():
        assert claim_history(queue_app, attempt_id) == [(row.claimed_by, "done")]
        assert row.tries == 1
        assert stored_test_rows(queue_app, attempt_id) == results[attempt_id]["report"]["total"] == 7
    graded_by = {row.claimed_by for row in rows.values()}
    assert graded_by == {"w1", "w2"}, graded_by
    # Concurrency: some attempt on w1 was being graded while one on w2 was.
    spans = [(r.claimed_by, r.started_at, r.finished_at) for r in rows.values()]
    assert any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in spans for b in spans), spans


def test_a_worker_killed_mid_grading_is_replaced_and_the_attempt_graded_once(
        queue_app: FastAPI, workers: dict[str, Process], tmp_path: Path) -> None:
    env = _env(queue_app)
    with TestClient(queue_app) as client:
        alice = register(client, "alice")
        workers["doomed"] = start_worker("doomed", env, tmp_path)
        attempt_id = submit(client, alice, SLOW_REFERENCE)
        wait_for(lambda: attempt_row(queue_app, attempt_id).status == "running", 120, "the attempt to be claimed")
        assert attempt_row(queue_app, attempt_id).claimed_by == "doomed"
        time.sleep(1.5)  # inside the submission's 6 s sleep: the sandbox child is running it
        sandbox_pids = _descendants(workers["doomed"].pid)
        assert sandbox_pids, "no sandbox process under the worker: it was not grading"
        workers["doomed"].kill()
        # The sandbox does not outlive its worker (bwrap --die-with-parent).
        wait_for(lambda: not any(_alive(p) for p in sandbox_pids), 15, "the sandbox to die with its worker")
        workers["heir"] = start_worker("heir", env, tmp_path)
        done = wait_done(client, attempt_id, alice, timeout=300)
    assert done["verdict"] == "accepted"
    assert claim_history(queue_app, attempt_id) == [("doomed", "expired"), ("heir", "done")]
    row = attempt_row(queue_app, attempt_id)
    assert row.tries == 2 and row.claimed_by == "heir"
    assert stored_test_rows(queue_app, attempt_id) == 7


def test_redis_restarts_lose_nothing(queue_app: FastAPI, workers: dict[str, Process], tmp_path: Path,
                                     redis_server: RedisServer) -> None:
    import redis

    from app.grading.celery_app import QUEUE

    env = _env(queue_app)
    broker = redis.Redis.from_url(redis_server.url)
    with TestClient(queue_app) as client:
        users = [register(client, f"student{i}") for i in range(6)]
        # 1. Messages waiting in Redis survive a restart (append-only file).
        queued = [submit(client, users[i], REFERENCE) for i in range(3)]
        assert broker.llen(QUEUE) == 3
        redis_server.restart()
        assert broker.llen(QUEUE) == 3
        # 2. Submissions while Redis is down are accepted (the row is committed) and sent later by the sweeper.
        redis_server.stop()
        started = time.monotonic()
        while_down = [submit(client, users[i], WRONG) for i in range(3, 5)]
        assert time.monotonic() - started < 10, "a broker outage must not hang the API"
        assert client.get("/readyz").status_code == 503
        redis_server.start()
        wait_for(lambda: client.get("/readyz").status_code == 200, 30, "readiness after Redis is back")
        workers["w1"] = start_worker("w1", env, tmp_path)
        for i, attempt_id in enumerate(queued + while_down):
            assert wait_done(client, attempt_id, users[i], timeout=300)["verdict"] == (
                "accepted" if attempt_id in queued else "wrong_answer")
        # 3. A restart under a running worker: it reconnects and keeps grading.
        redis_server.restart()
        last = submit(client, users[5], REFERENCE)
        assert wait_done(client, last, users[5], timeout=300)["verdict"] == "accepted"
    for attempt_id in [*queued, *while_down, last]:
        assert claim_history(queue_app, attempt_id) == [("w1", "done")], attempt_id


def test_a_long_poll_is_woken_by_the_worker_that_graded(queue_app: FastAPI, workers: dict[str, Process],
                                                         tmp_path: Path, redis_server: RedisServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker announces each stored result on Redis; the server's relay wakes the request waiting for it,
    also after Redis restarted (the relay subscribes again)."""
    import redis

    from app.grading.completions import DONE_CHANNEL

    monkeypatch.setattr(queue_app.state.settings, "long_poll_recheck_s", 600.0)  # only a wake-up ends a wait
    broker = redis.Redis.from_url(redis_server.url)
    with TestClient(queue_app) as client:
        alice = register(client, "alice")
        workers["w1"] = start_worker("w1", _env(queue_app), tmp_path)
        warm = submit(client, alice, WRONG)  # the worker's pool starts; its result may come at any time
        deadline = time.monotonic() + 300
        while client.get(f"{API}/submissions/{warm}", params={"wait": 30}, headers=alice).json()["status"] != "done":
            assert time.monotonic() < deadline, "warm-up attempt not graded"
        for restart_first in (False, True):
            if restart_first:
                redis_server.restart()
                wait_for(lambda: broker.pubsub_numsub(DONE_CHANNEL)[0][1] >= 1, 30, "the relay to subscribe again")
            attempt_id = submit(client, alice, REFERENCE)
            started = time.monotonic()
            polled = client.get(f"{API}/submissions/{attempt_id}", params={"wait": 30}, headers=alice).json()
            assert polled["status"] == "done" and polled["verdict"] == "accepted"
            assert time.monotonic() - started < 25  # woken, not timed out (the re-read is 600 s away)
        assert queue_app.state.done_relay.relayed >= 2


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        # Every thread's list: a child is listed under the thread that forked it (the warm pool starts its
        # zygote from a launcher thread).
        children: list[str] = []
        try:
            for task in Path(f"/proc/{parent}/task").iterdir():
                children += (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.waits
def test_an_authors_next_attempt_starts_as_soon_as_the_one_before_ends(
        tmp_path: Path, data_dir: Path, small_bank: SmallBank, pg_url: str, redis_server: RedisServer) -> None:
    """One running attempt per author, without latency: an attempt whose message a free worker thread had to drop
    (its author had one running) starts the moment that one is stored, and so does one submitted right after a
    result arrived. The sweeper's resend is 300 s away here, so only the hand-off can start them in time."""
    if redis_server.proc is None:
        redis_server.start()
    _flush(redis_server)
    settings = queue_settings(tmp_path, data_dir, database_url=pg_url, redis_url=redis_server.url,
                              problems_dir=small_bank.problems_dir, courses_dir=small_bank.courses_dir,
                              requeue_after_s=300.0)
    app = create_app(settings, bank=ProblemBank(small_bank.problems_dir))
    first, second, third = small_bank.ids[:3]
    worker: Process | None = None
    try:
        with TestClient(app) as client:
            alice = register(client, "alice")
            # Two threads: one grades Alice's attempt while the other takes (and drops) her next one's message.
            worker = start_worker("w", worker_env(settings), tmp_path, "--pool", "threads", "--concurrency", "2")
            warm = submit(client, alice, correct_answer(first), first)  # the pool forks its children
            assert wait_done(client, warm, alice, timeout=300)["verdict"] == "accepted"
            rounds = []
            for _ in range(3):
                # Queued behind: the second is posted while the first (2 s asleep at import) is running.
                slow = submit(client, alice, "import time\ntime.sleep(2)\n" + correct_answer(second), second)
                wait_for(lambda s=slow: attempt_row(app, s).status == "running", 60, "the first attempt to start")
                behind = submit(client, alice, correct_answer(third), third)
                assert wait_done(client, behind, alice, timeout=120)["verdict"] == "accepted"
                ended, started = attempt_row(app, slow).finished_at, attempt_row(app, behind).started_at
                assert ended is not None and started is not None
                # Right after: posted the moment the previous result arrived.
                at_once = submit(client, alice, correct_answer(first) + "# again\n", first)
                assert wait_done(client, at_once, alice, timeout=120)["verdict"] == "accepted"
                row = attempt_row(app, at_once)
                assert row.started_at is not None
                rounds.append(((started - ended).total_seconds(), (row.started_at - row.created_at).total_seconds()))
        assert "message dropped" in worker.log(), "no message was dropped: the test did not make the race it is about"
        assert all(behind_s < 3 and at_once_s < 3 for behind_s, at_once_s in rounds), rounds
        print(f"next attempt of the same author started after (s): {rounds}")
    finally:
        if worker is not None:
            worker.stop()


@pytest.mark.waits
def test_an_author_back_within_the_grading_budget_starts_at_once(
        tmp_path: Path, data_dir: Path, small_bank: SmallBank, pg_url: str, redis_server: RedisServer) -> None:
    """An attempt posted while its author is over the grading budget (and has nothing running, so no hand-off
    will come) starts when the budget allows, not when the sweeper happens to resend its message (300 s here)."""
    if redis_server.proc is None:
        redis_server.start()
    _flush(redis_server)
    budget_s, window_s = 0.5, 5.0
    settings = queue_settings(tmp_path, data_dir, database_url=pg_url, redis_url=redis_server.url,
                              problems_dir=small_bank.problems_dir, courses_dir=small_bank.courses_dir,
                              requeue_after_s=300.0, grading_budget_s=budget_s, grading_budget_window_s=window_s)
    app = create_app(settings, bank=ProblemBank(small_bank.problems_dir))
    first, second = small_bank.ids[:2]
    env = {**worker_env(settings), "GRADAX_GRADING_BUDGET_S": str(budget_s),
           "GRADAX_GRADING_BUDGET_WINDOW_S": str(window_s)}
    worker: Process | None = None
    try:
        with TestClient(app) as client:
            alice = register(client, "alice")
            worker = start_worker("w", env, tmp_path)
            # A second of CPU: over the budget for the next 5 s.
            spin = ("import time\nend = time.process_time() + 1\nwhile time.process_time() < end:\n    pass\n"
                    + correct_answer(first))
            costly = submit(client, alice, spin, first)
            assert wait_done(client, costly, alice, timeout=300)["verdict"] == "accepted"
            waiting = submit(client, alice, correct_answer(second), second)
            assert wait_done(client, waiting, alice, timeout=120)["verdict"] == "accepted"
        with app.state.session_factory() as session:
            charged = session.scalar(select(GradingClaim.cost_s).where(GradingClaim.attempt_id == costly))
        assert charged is not None and charged >= 0.8
        ended, started = attempt_row(app, costly).finished_at, attempt_row(app, waiting).started_at
        assert ended is not None and started is not None
        delay = (started - ended).total_seconds()
        # The charge leaves the window 5 s after it was made: the next attempt starts then, give or take a second.
        assert window_s - 0.5 < delay < window_s + 3, delay
        assert "over its grading budget" in worker.log()
        print(f"over budget: the next attempt started {delay:.2f} s after the costly one ended (window {window_s} s)")
    finally:
        if worker is not None:
            worker.stop()


def test_a_worker_keeps_spare_children_of_prepared_problems(queue_app: FastAPI, workers: dict[str, Process],
                                                            tmp_path: Path) -> None:
    """A worker whose data dir holds prepared problems (the image's `gradax prepare`, an earlier run) keeps warm
    spares of them, as the server does: before any submission, its pool has forked and readied a child."""
    import httpx

    from graders.prepare import Preparer
    from service.servers import free_port

    settings = queue_app.state.settings
    loaded = ProblemBank(settings.problems_dir).get(PID)
    assert loaded is not None
    assert Preparer(settings).prepare_one(loaded).status in ("prepared", "cached")
    port = free_port()
    workers["spares"] = start_worker("spares", _env(queue_app), tmp_path, "--metrics-port", str(port))

    def ready_children() -> float:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, verify=TLS).text
        lines = [line for line in text.splitlines() if line.startswith('gradax_pool_runs{path="ready"}')]
        return float(lines[0].split()[-1]) if lines else 0.0

    wait_for(lambda: ready_children() >= 1, 120, "a spare warm child in a worker nobody submitted to")


@pytest.mark.waits
def test_a_sleeping_submission_does_not_hold_a_solo_worker_from_another_students_answer(
        tmp_path: Path, data_dir: Path, small_bank: SmallBank, pg_url: str, redis_server: RedisServer) -> None:
    """A worker grades one attempt at a time (`--pool solo`), and a submission that sleeps holds it until the
    wall-clock backstop. Beside a run idle for 2 s the worker grades the attempt due next (app/grading/beside.py):
    another student's answer does not wait for the sleeper; the sleeper's author's next one still does."""
    if redis_server.proc is None:
        redis_server.start()
    _flush(redis_server)
    settings = queue_settings(tmp_path, data_dir, database_url=pg_url, redis_url=redis_server.url,
                              problems_dir=small_bank.problems_dir, courses_dir=small_bank.courses_dir)
    app = create_app(settings, bank=ProblemBank(small_bank.problems_dir))
    first, second = small_bank.ids[:2]
    sleep_s = 12
    worker: Process | None = None
    try:
        with TestClient(app) as client:
            mallory, alice = register(client, "mallory"), register(client, "alice")
            worker = start_worker("w", worker_env(settings), tmp_path)  # solo, one at a time
            warm = submit(client, alice, correct_answer(first), first)  # the pool forks its children
            assert wait_done(client, warm, alice, timeout=300)["verdict"] == "accepted"
            sleeper = submit(client, mallory, f"import time\ntime.sleep({sleep_s})\n" + correct_answer(first), first)
            wait_for(lambda: attempt_row(app, sleeper).status == "running", 60, "the sleeper to start")
            started = time.monotonic()
            answer = submit(client, alice, correct_answer(second), second)
            assert wait_done(client, answer, alice, timeout=120)["verdict"] == "accepted"
            waited = time.monotonic() - started
            assert attempt_row(app, sleeper).status == "running", "the sleeper ended first: nothing was shown"
            assert waited < sleep_s - 4, waited
            assert claim_history(app, answer) == [("w/beside-0", "done")]
            mallorys_next = submit(client, mallory, correct_answer(second), second)
            assert wait_done(client, mallorys_next, mallory, timeout=120)["verdict"] == "accepted"
            after = attempt_row(app, mallorys_next).started_at
            ended = attempt_row(app, sleeper).finished_at
            assert after is not None and ended is not None and after >= ended  # one running attempt per author
        print(f"\nsolo worker: Alice's answer took {waited:.1f} s beside a {sleep_s} s sleeper")
    finally:
        if worker is not None:
            worker.stop()
