"""Crash and restart: SIGKILL the real server during a burst of 30 submissions, start it again, lose nothing.

What a student relies on: an answered submission is stored (committed before the 202), an attempt being graded
when the server died is graded after the restart, and nobody ends up with a submission graded twice or
counted twice. Each user submits once, so "one attempt per user" and "one stored result per attempt" are
both checkable.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from reliability.server import Server, golden_case, wait_all_done

pytestmark = pytest.mark.slow

PROBLEM = "nnx-module-basics"
# A mix of verdicts, each the golden expectation for its file.
CASES = ["reference-style", "wrong-no-scaling", "wrong-transposed-kernel", "returns-none", "syntax-error"]
# 30, not 50 (until 2026-12-05): with 2 grading workers, half the burst is answered and queued before the kill
# either way, and each submission is a warm child (~0.5 CPU-s) of a CPU-bound suite.
BURST = 30
# The second half of the burst sleeps at import, then answers like reference-style: a warm grading takes ~50 ms,
# so "kill once something is running" raced the gradings finishing (CI, 2026-12-05: nothing was running at the
# kill). A grading that lasts half a second is still being graded when the kill lands a few milliseconds later.
SLOW = "slow-reference-style"
SLOW_S = 0.5


def test_sigkill_during_a_burst_then_restart_grades_every_attempt_exactly_once(tmp_path: Path,
                                                                             data_dir: Path) -> None:
    cases = {name: golden_case(PROBLEM, name) for name in CASES}
    code, verdict = golden_case(PROBLEM, "reference-style")
    cases[SLOW] = (f"import time\ntime.sleep({SLOW_S})\n" + code, verdict)
    plan = [(f"crash{i:02d}", CASES[i % len(CASES)] if i < BURST // 2 else SLOW) for i in range(BURST)]
    slow_users = tuple(user for user, case in plan if case == SLOW)
    server = Server(tmp_path, data_dir, GRADAX_GRADING_WORKERS="2")
    server.start()
    try:
        with server.client() as c:
            headers = {user: server.register(c, user) for user, _ in plan}

        answered: dict[str, int] = {}  # user -> attempt id from a 202

        def post(user: str, case: str) -> None:
            try:
                with server.client() as c:
                    r = c.post("/submissions", json={"problem_id": PROBLEM, "code": cases[case][0]},
                               headers=headers[user])
            except httpx.HTTPError:
                return  # the server died under this request: resubmitted after the restart
            assert r.status_code == 202, r.text
            answered[user] = r.json()["id"]

        def a_slow_one_is_running() -> bool:
            marks = ",".join("?" * len(slow_users))
            return bool(server.query(f"SELECT a.id FROM attempts a JOIN users u ON u.id = a.user_id "
                                     f"WHERE a.status = 'running' AND u.username IN ({marks})", slow_users))

        # Half the burst, then the slow rest while the server is killed under it once one of those is being graded.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: post(*p), plan[: BURST // 2]))
            futures = [pool.submit(post, *p) for p in plan[BURST // 2:]]
            deadline = time.monotonic() + 60
            while not a_slow_one_is_running() and time.monotonic() < deadline:
                time.sleep(0.02)
            server.kill()
            for f in futures:
                f.result()
        # Frozen state after the crash: every answered submission is in the database.
        running_at_crash = {i for (i,) in server.query("SELECT id FROM attempts WHERE status = 'running'")}
        stored = dict(server.query("SELECT u.username, a.id FROM attempts a JOIN users u ON u.id = a.user_id"))
        for user, attempt_id in answered.items():
            assert stored.get(user) == attempt_id, f"{user}'s answered attempt {attempt_id} was lost"
        assert running_at_crash, "the kill came when nothing was being graded; the test proves less than it says"

        server.start()
        with server.client() as c:
            for user, case in plan:
                if user in answered:
                    continue
                # The crash cut this request off: it may or may not have been committed. Submitting again
                # is what a student does; 409 means the first one was stored and is still being graded.
                r = c.post("/submissions", json={"problem_id": PROBLEM, "code": cases[case][0]}, headers=headers[user])
                assert r.status_code in (202, 409), r.text
        wait_all_done(server, [i for (i,) in server.query("SELECT id FROM attempts")], timeout=600)

        rows = server.query("SELECT u.username, a.id, a.verdict, a.status FROM attempts a "
                            "JOIN users u ON u.id = a.user_id ORDER BY a.id")
        per_user: dict[str, list[tuple[int, str]]] = {}
        for user, attempt_id, verdict, status in rows:
            assert status == "done"
            per_user.setdefault(user, []).append((attempt_id, verdict))
        assert sorted(per_user) == sorted(u for u, _ in plan), "an attempt is missing"
        for user, case in plan:
            assert len(per_user[user]) == 1, f"{user} has {len(per_user[user])} attempts: {per_user[user]}"
            attempt_id, verdict = per_user[user][0]
            assert verdict == cases[case][1], f"{user} ({case}): {verdict}, expected {cases[case][1]}"

        # Claim history: exactly one claim per attempt wrote its result; the gradings the crash cut off
        # ended as "expired" at the restart and were graded again.
        done_claims = dict(server.query("SELECT attempt_id, count(*) FROM grading_claims WHERE outcome = 'done' "
                                        "GROUP BY attempt_id"))
        assert len(done_claims) == BURST and set(done_claims.values()) == {1}
        expired = {i for (i,) in server.query("SELECT attempt_id FROM grading_claims WHERE outcome = 'expired'")}
        assert expired == running_at_crash
        open_claims = server.query("SELECT count(*) FROM grading_claims WHERE outcome IS NULL")[0][0]
        assert open_claims == 0
        # Progress counts each submission once.
        attempts_counted = server.query("SELECT sum(attempts) FROM progress")[0][0]
        assert attempts_counted == BURST
        print(f"\ncrash test: {len(answered)} answered before the kill, {len(running_at_crash)} being graded "
              f"at the kill, {BURST - len(answered)} resubmitted after the restart")
    finally:
        server.stop()


def test_sigterm_stops_cleanly_and_the_next_start_grades_what_was_left(tmp_path: Path, data_dir: Path) -> None:
    """SIGTERM (a deploy, `docker stop`): the server exits on its own, leaves nothing `running`, and the attempts
    it did not finish are graded by the next start."""
    code, expected = golden_case(PROBLEM, "reference-style")
    server = Server(tmp_path, data_dir, GRADAX_GRADING_WORKERS="1", GRADAX_SHUTDOWN_GRACE_S="1")
    server.start()
    try:
        with server.client() as c:
            ids = []
            for i in range(3):
                headers = server.register(c, f"term{i}")
                r = c.post("/submissions", json={"problem_id": PROBLEM, "code": code}, headers=headers)
                assert r.status_code == 202
                ids.append(r.json()["id"])
        deadline = time.monotonic() + 120
        while server.queue_depth()["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        # uvicorn re-raises the signal after its graceful shutdown, so the exit status is "killed by SIGTERM";
        # the database below shows the shutdown ran (a SIGKILL leaves the row `running` with an open claim).
        assert server.terminate(timeout=60) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 30
        statuses = dict(server.query("SELECT id, status FROM attempts"))
        assert "running" not in statuses.values() and set(statuses) == set(ids)
        assert server.query("SELECT count(*) FROM grading_claims WHERE outcome IS NULL")[0][0] == 0

        server.start()
        wait_all_done(server, ids, timeout=600)
        assert {v for (v,) in server.query("SELECT verdict FROM attempts")} == {expected}
        done_claims = dict(server.query("SELECT attempt_id, count(*) FROM grading_claims WHERE outcome = 'done' "
                                        "GROUP BY attempt_id"))
        assert done_claims == dict.fromkeys(ids, 1)
    finally:
        server.stop()
