"""The whole story against the fake LMS, with real grading: an instructor deep-links a problem, a student
launches it, submits, is graded in the sandbox, and the score arrives at the LMS's AGS endpoint. The same
launch in a real browser (the LMS page's form auto-posting into gradax) lands the student on the problem,
logged in: tests/browser/test_lti_launch.py."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lti.conftest import GradaxServer, lti_settings, register
from lti.fake_platform import FakePlatform
from lti.test_passback import deep_link, wait_for

ROOT = Path(__file__).resolve().parents[2]
PID = "nnx-module-basics"
RIGHT = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()
GRADING_TIMEOUT_S = 240  # a cold sandboxed Python per submission on a shared 2-core machine

# Real grading: kept on the same xdist worker as the other grading web tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-grading")]


@pytest.fixture(scope="module")
def grading_tool(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, lti_bank) -> Iterator[GradaxServer]:  # type: ignore[no-untyped-def]
    server = GradaxServer(lti_settings(tmp_path_factory.mktemp("lti-e2e"), data_dir, grading_workers=1),
                          lti_bank).start()
    yield server
    server.stop()


def test_deep_link_launch_submit_and_the_score_arrives_at_the_lms(grading_tool: GradaxServer) -> None:
    from lti.conftest import Browser

    lms = FakePlatform(grading_tool.url).start()
    try:
        register(grading_tool, lms)
        link = deep_link(grading_tool, lms, f"problem:{PID}")
        student = lms.person("s-" + secrets.token_hex(3), "Lin Student", "lin@uni.test", "Learner")
        b = Browser(grading_tool.url)
        r = b.launch(lms.login_params(student, link=link))
        assert r.status_code == 303 and r.headers["location"] == f"/problems/{PID}"
        page = b.http.get(r.headers["location"]).text
        csrf = re.search(r'"csrf":\s*"([^"]+)"', page)
        assert csrf, "the problem page carries the CSRF token for its API calls"
        posted = b.http.post("/api/v1/submissions", json={"problem_id": PID, "code": RIGHT},
                             headers={"X-CSRF-Token": csrf.group(1)})
        assert posted.status_code == 202, posted.text
        attempt_id = posted.json()["id"]
        deadline = time.monotonic() + GRADING_TIMEOUT_S
        while True:
            body = b.http.get(f"/api/v1/submissions/{attempt_id}", params={"wait": 10}, timeout=30).json()
            if body["status"] == "done" or time.monotonic() > deadline:
                break
        assert body["status"] == "done" and body["verdict"] != "internal_error", body
        # The reference solution is accepted (score 1) unless an overloaded machine timed it out: either way the
        # LMS must get exactly what the grader reported.
        wait_for(lambda: len(lms.scores_for(student.sub)) == 1, timeout=60, what="the score at the LMS")
        score = lms.scores_for(student.sub)[0]
        assert (score["scoreGiven"], score["scoreMaximum"]) == (body["report"]["score"], 1.0)
        if body["verdict"] == "accepted":
            assert score["scoreGiven"] == 1.0
        assert score["lineitem"] == link.lineitem_id
        b.close()
    finally:
        lms.stop()
