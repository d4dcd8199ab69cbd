"""What the server's preparation service says before anything is prepared (file checks only, nothing runs)."""

from __future__ import annotations

from pathlib import Path

from app.grading.preparation import BankPreparation
from graders.prepare import Preparer
from graders.problem import ProblemBank
from graders.scaffold import scaffold
from graders.settings import GraderSettings


def test_waiting_for_preparation_is_only_said_where_attempts_are_graded(tmp_path: Path) -> None:
    problems = tmp_path / "problems"
    for problem_id in ("aa-first", "bb-second"):
        scaffold(problem_id, problems)
    bank = ProblemBank(problems)
    preparer = Preparer(GraderSettings(data_dir=tmp_path / "data", problems_dir=problems))
    here = BankPreparation(bank, preparer, background=False)
    assert here.waits_for("aa-first") and here.waits_for("bb-second")  # an empty data dir: nothing prepared
    assert not here.waits_for("no-such-problem")
    here.urgent("bb-second")  # without background threads there is no queue: the grading thread prepares
    assert here.snapshot()["queued"] == []
    # `gradax worker`s grade with caches of their own: this process cannot say an attempt waits for one.
    elsewhere = BankPreparation(bank, preparer, background=False, grades_here=False)
    assert not elsewhere.waits_for("aa-first")
