"""Bounded load on a gradax server on loopback: each simulated student submits a correct
`nnx-module-basics` solution a fixed number of times, waiting for each result, then stops; the run
ends by itself once every submission is graded.

Reported rows: `POST /submissions` (the API's answer, 202), `GET /submissions/[id]?wait=10` (long poll), and
`GRADE submit->graded` (from the POST to reading `done`: what a student waits), failed when the
verdict is not `accepted`.

Run through tests/load/run_load.py, which starts the servers and workers. Environment:
GRADAX_LOAD_SUBMISSIONS (per user, default 5), GRADAX_LOAD_TIMEOUT_S (per submission, default 120).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import gevent
from locust import HttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser

PROBLEM = "nnx-module-basics"
CODE = (Path(__file__).resolve().parents[2] / "reference_solutions" / "nnx_module_basics.py").read_text()
PER_USER = int(os.environ.get("GRADAX_LOAD_SUBMISSIONS", "5"))
TIMEOUT_S = float(os.environ.get("GRADAX_LOAD_TIMEOUT_S", "120"))
PASSWORD = "load test password"

_graded = 0  # submissions whose result was read (or timed out), all users together


@events.test_start.add_listener
def _only_loopback(environment: Environment, **_: object) -> None:
    host = urlparse(environment.host or "").hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {environment.host!r}: loopback targets only")


class Student(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        name = f"load-{uuid.uuid4().hex[:12]}"
        self.client.post("/api/v1/auth/register", json={"username": name, "password": PASSWORD},
                         name="POST /auth/register")
        r = self.client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD},
                             name="POST /auth/token")
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        self.left = PER_USER

    @task
    def submit_and_wait(self) -> None:
        if self.left <= 0:
            self._done()
        self.left -= 1
        started = time.perf_counter()
        with self.client.post("/api/v1/submissions", json={"problem_id": PROBLEM, "code": CODE},
                              headers=self.headers, name="POST /submissions", catch_response=True) as r:
            if r.status_code != 202:
                r.failure(f"status {r.status_code}: {r.text[:200]}")
                self._count_one()
                return
            attempt_id = r.json()["id"]
        verdict, error = None, None
        while time.perf_counter() - started < TIMEOUT_S:
            # A long poll, as the browser does: answered the moment the result is stored.
            body = self.client.get(f"/api/v1/submissions/{attempt_id}?wait=10", headers=self.headers,
                                   name="GET /submissions/[id]?wait=10").json()
            if body.get("status") == "done":
                verdict = body.get("verdict")
                break
        if verdict is None:
            error = TimeoutError(f"attempt {attempt_id} not graded within {TIMEOUT_S} s")
        elif verdict != "accepted":
            error = AssertionError(f"attempt {attempt_id}: verdict {verdict}")
        events.request.fire(request_type="GRADE", name="submit->graded", context={}, response=None,
                            response_time=(time.perf_counter() - started) * 1000, response_length=0,
                            exception=error)
        self._count_one()

    def _count_one(self) -> None:
        global _graded
        _graded += 1
        options = self.environment.parsed_options
        expected = (options.num_users if options is not None else 1) * PER_USER
        if _graded >= expected and self.environment.runner is not None:
            # Every submission is through: end the run, after locust's 1 s CSV writer has seen the last sample.
            gevent.spawn_later(3.0, self.environment.runner.quit)

    def _done(self) -> None:
        raise StopUser()
