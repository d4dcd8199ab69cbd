"""What the server's preparation service says before anything is prepared (file checks only, nothing runs)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.grading.preparation import BankPreparation
from graders.prepare import Preparer, ProblemPrepared
from graders.problem import LoadedProblem, ProblemBank
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


class _Preparer(Preparer):
    """Prepared means listed in `done`; preparing adds to it (no trusted process runs)."""

    def __init__(self, settings: GraderSettings, done: set[str]):
        super().__init__(settings)
        self.done = done

    def is_prepared(self, loaded: LoadedProblem) -> bool:
        return loaded.id in self.done

    def prepare_one(self, loaded: LoadedProblem) -> ProblemPrepared:
        self.done.add(loaded.id)
        return ProblemPrepared(loaded.id, "prepared", 0.0)


def test_prepared_problems_are_offered_to_the_warm_pool_in_curriculum_order(tmp_path: Path) -> None:
    """At start every problem already prepared is offered (the pool keeps spare children of them); one prepared
    later is offered when its preparation ends; an unprepared one is not offered before."""
    problems = tmp_path / "problems"
    for problem_id in ("aa-first", "bb-second", "cc-third"):
        scaffold(problem_id, problems)
    bank = ProblemBank(problems)
    preparer = _Preparer(GraderSettings(data_dir=tmp_path / "data", problems_dir=problems), {"aa-first", "cc-third"})
    offered: list[str] = []
    ready = threading.Event()

    def offer(loaded: LoadedProblem) -> None:
        offered.append(loaded.id)
        if len(offered) == 3:
            ready.set()

    preparation = BankPreparation(bank, preparer, background=False, on_prepared=offer)
    preparation.start()
    deadline = time.monotonic() + 10
    while len(offered) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert offered == ["aa-first", "cc-third"]
    second = bank.get("bb-second")
    assert second is not None
    preparation.ensure(second)  # a grading thread prepares it
    assert ready.wait(10), offered
    assert offered[2] == "bb-second"
    # Where this process does not grade (queue workers do), or grades cold, nothing is offered.
    assert BankPreparation(bank, preparer, grades_here=False, on_prepared=offer).on_prepared is None
    assert BankPreparation(bank, preparer, warm=False, on_prepared=offer).on_prepared is None


class _HeldPreparer(_Preparer):
    """Like _Preparer, but the first preparation waits for `release` (a background thread is busy on it)."""

    def __init__(self, settings: GraderSettings, done: set[str]):
        super().__init__(settings, done)
        self.began = threading.Event()
        self.release = threading.Event()

    def prepare_one(self, loaded: LoadedProblem) -> ProblemPrepared:
        if not self.began.is_set():
            self.began.set()
            assert self.release.wait(10)
        return super().prepare_one(loaded)


def test_a_submission_moves_its_problem_to_the_front_of_the_background_queue(tmp_path: Path) -> None:
    """At start the bank is queued in curriculum order; a student's submission for a problem still queued makes it
    the next one prepared; one already prepared is not queued again."""
    problems = tmp_path / "problems"
    ids = ("aa-first", "bb-second", "cc-third", "dd-fourth", "ee-fifth")
    for problem_id in ids:
        scaffold(problem_id, problems)
    bank = ProblemBank(problems)
    preparer = _HeldPreparer(GraderSettings(data_dir=tmp_path / "data", problems_dir=problems), {"ee-fifth"})
    preparation = BankPreparation(bank, preparer, workers=1)
    preparation.start()
    try:
        assert preparer.began.wait(10)  # the one background thread is on aa-first
        assert preparation.snapshot()["queued"] == ["bb-second", "cc-third", "dd-fourth"]
        preparation.urgent("dd-fourth")
        preparation.urgent("ee-fifth")  # prepared already: nothing to move
        assert preparation.snapshot()["queued"] == ["dd-fourth", "bb-second", "cc-third"]
        preparer.release.set()
        deadline = time.monotonic() + 10
        while len(preparation.finished) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(preparation.started) == ["aa-first", "dd-fourth", "bb-second", "cc-third"]
        assert not any(preparation.waits_for(problem_id) for problem_id in ids)
    finally:
        preparer.release.set()
        preparation.stop()
