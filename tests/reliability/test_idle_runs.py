"""A submission that sleeps holds its grading slot until the wall-clock backstop (3x its CPU limit: a minute on
nnx-module-basics). With every slot held by sleepers, everyone else's feedback waited that long. The server now
grades another attempt beside a run that has neither used nor waited for a CPU for a while (graders/run_activity.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reliability.server import Server, golden_case, wait_all_done

pytestmark = pytest.mark.slow

PROBLEM = "nnx-module-basics"
SLEEP_S = 15


def test_a_sleeping_submission_does_not_hold_up_another_students_answer(tmp_path: Path, data_dir: Path) -> None:
    code, verdict = golden_case(PROBLEM, "reference-style")
    server = Server(tmp_path, data_dir, GRADAX_GRADING_WORKERS="1")
    server.start()
    try:
        with server.client() as c:
            mallory, alice = server.register(c, "mallory"), server.register(c, "alice")
            sleeping = f"import time\ntime.sleep({SLEEP_S})\n" + code
            sleeper = c.post("/submissions", json={"problem_id": PROBLEM, "code": sleeping},
                             headers=mallory).json()["id"]
            again = c.post("/submissions", json={"problem_id": PROBLEM, "code": code + "# again\n"},
                           headers=mallory)
            assert again.status_code == 409  # one attempt in flight per author and problem
            deadline = time.monotonic() + 120
            while server.query("SELECT status FROM attempts WHERE id = ?", [sleeper])[0][0] != "running":
                assert time.monotonic() < deadline, "the sleeper never started"
                time.sleep(0.05)
            started = time.monotonic()
            mine = c.post("/submissions", json={"problem_id": PROBLEM, "code": code},
                          headers=alice).json()["id"]
            result = c.get(f"/submissions/{mine}", params={"wait": 30}, headers=alice).json()
            waited = time.monotonic() - started
        assert result["verdict"] == verdict, result
        # Graded beside the sleeper (about 2 s of idleness, then the grading), not after its 15 s.
        assert waited < 10, f"Alice waited {waited:.1f} s behind a sleeping submission"
        assert server.query("SELECT status FROM attempts WHERE id = ?", [sleeper])[0][0] == "running"
        wait_all_done(server, [sleeper], timeout=120)
        assert server.query("SELECT verdict FROM attempts WHERE id = ?", [sleeper])[0][0] == verdict
        print(f"\nidle runs: Alice's answer took {waited:.1f} s beside a {SLEEP_S} s sleeper (1 grading thread)")
    finally:
        server.stop()
