"""The server prepares its bank in the background (app/grading/preparation.py): at start, a problem with a
waiting submission first, and after an upload; a submission waiting for its problem's first preparation says
so (`phase: preparing`), not that its code runs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.helpers import API, login, make_settings, make_user, register, wait_done
from app.main import create_app
from app.models import Role
from graders.prepare import Preparer
from graders.scaffold import REFERENCE, TEMPLATE, scaffold

# Trusted reference runs and gradings of tiny problems (5 CPU-s limits, far from them): no need to keep it
# on the real-grading web tests' worker.
pytestmark = [pytest.mark.slow]
LIMITS = "limits: {time_s: 5, memory_mb: 1024}\n"


def correct(problem_id: str) -> str:
    return f"import jax.numpy as jnp\n\n\ndef {problem_id.replace('-', '_')}(seed, x):\n    return jnp.asarray(x) * 2\n"


def test_background_preparation_puts_a_waiting_problem_first(tmp_path: Path, data_dir: Path) -> None:
    # Ids new to the shared data dir, so nothing is prepared yet; curriculum order is a, b, c.
    tag = uuid.uuid4().hex[:8]
    a, b, c, uploaded = (f"prep-{tag}-{x}" for x in "abcd")
    problems, courses = tmp_path / "problems", tmp_path / "courses"
    courses.mkdir()
    for problem_id in (a, b, c):
        scaffold(problem_id, problems)
        path = problems / f"{problem_id}.yaml"
        path.write_text(path.read_text() + LIMITS)
    # The warm pool: what the server prepares is what its warm children need (a cold start needs only the
    # reference outputs, and computes them itself).
    settings = make_settings(tmp_path, data_dir, problems_dir=problems, courses_dir=courses, grading_workers=1,
                             prepare_in_background=True, pool="warm")
    app = create_app(settings)
    preparation = app.state.preparation
    preparation.workers = 1  # one background thread, whatever the machine: the order below is then certain
    with TestClient(app) as client:
        alice = register(client, "alice")
        attempt = client.post(f"{API}/submissions", json={"problem_id": c, "code": correct(c)}, headers=alice).json()
        waiting = client.get(f"{API}/submissions/{attempt['id']}", headers=alice).json()
        assert waiting["status"] in ("queued", "running") and waiting["phase"] == "preparing", waiting
        done = wait_done(client, attempt["id"], alice)
        assert done["verdict"] == "accepted" and done["phase"] == "done"

        deadline = time.monotonic() + 240
        while any(preparation.waits_for(i) for i in (a, b, c)) and time.monotonic() < deadline:
            time.sleep(0.5)
        started = list(preparation.started)
        # a was started at once; c, which a student waited for, went before b (the grading thread that took the
        # attempt prepares c itself while a runs, so c and b may end in either order: they start in this one)
        assert started.index(a) < started.index(c) < started.index(b), started
        assert set(preparation.finished) >= {a, b, c}
        assert all(Preparer(settings).is_prepared(app.state.bank.get(i)) for i in (a, b, c))

        # An upload is prepared in the background too, before anyone submits to it.
        make_user(app, "teacher", Role.INSTRUCTOR)
        teacher = login(client, "teacher")
        body = {"yaml": TEMPLATE.format(id=uploaded, title=uploaded, function=uploaded.replace("-", "_")) + LIMITS,
                "reference": REFERENCE.format(id=uploaded, function=uploaded.replace("-", "_"))}
        assert client.post(f"{API}/instructor/problems", json=body, headers=teacher).status_code == 201
        while preparation.waits_for(uploaded) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert Preparer(settings).is_prepared(app.state.bank.get(uploaded)), preparation.snapshot()
        assert list(preparation.finished)[-1] == uploaded
