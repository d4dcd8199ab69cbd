"""Instructor views: per-problem statistics, per-student progress, the grade sheet (CSV) and regrading.

Statistics count students only: instructors trying their own problems would otherwise skew solve rates.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.grading import claims
from app.grading.backend import max_hold_s
from app.models import Attempt, AttemptStatus, AttemptTest, Problem, Progress, Role, User
from app.services.gradebook import safe_cell
from app.services.grades import overridden_users, refresh_problem
from app.services.problems import list_problems
from graders.engine import Grader
from graders.problem import ProblemBank
from graders.report import Report, Verdict

TOP_N = 5


@dataclass
class ProblemStats:
    id: str
    title: str
    attempts: int = 0
    students: int = 0
    solved: int = 0
    solve_rate: float | None = None
    median_attempts_to_accept: float | None = None
    top_failures: list[FailureGroup] = field(default_factory=list)
    top_diagnoses: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class FailureGroup:
    """Attempts that failed the same way: same first failing test, same stage, same diagnosis.

    Messages carry the numbers of one attempt (worst index, got 0.31), so grouping by message split one
    mistake into many rows; `example` keeps one message to show what the group looks like."""

    test: str
    stage: str
    diagnosis: str | None
    count: int = 0
    example: str = ""


@dataclass
class StudentProgress:
    username: str
    solved: int
    attempts: int
    solved_problems: list[str]


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:300] if lines else ""


def _error_type(message: str) -> str | None:
    # "TypeError: ..." (public) or "TypeError raised (hidden test)" (hidden)
    head = message.split(":", 1)[0].split(" ", 1)[0]
    return head if head.isidentifier() and (head.endswith("Error") or head.endswith("Exception")) else None


@dataclass
class _Failed:
    """One graded, not accepted attempt: its verdict, report-level diagnosis and message, and its tests that did
    not pass (attempt_tests rows, in order)."""

    verdict: str | None
    diagnosis: str | None
    message: str | None
    tests: list[tuple[str, str, str | None, str]] = field(default_factory=list)

    def key(self) -> tuple[str, str, str | None]:
        """(first failing test, stage, diagnosis): the stage is the comparison stage that failed (structure,
        shape, finite, values, ...), the exception type for errors, or the verdict when no test ran (syntax
        errors)."""
        for name, status, stage, message in self.tests:
            if status == "skipped":
                continue
            if status == "failed" and stage:
                return name or "?", stage, self.diagnosis
            return name or "?", (_error_type(message) if status == "error" else None) or status, self.diagnosis
        return "", self.verdict or "failed", self.diagnosis

    def example(self) -> str:
        """What went wrong: the first failing test's message, else the report's own message."""
        return next((_first_line(m) for _, _, _, m in self.tests if m and m.strip()), _first_line(self.message))


def problem_stats(session: Session, bank: ProblemBank) -> list[ProblemStats]:
    """One row per listed problem, in curriculum order, from the students' graded Submit attempts (their
    per-test rows give the failures; diagnoses are read from the stored reports by the database)."""
    problems, _ = list_problems(bank=bank)
    counted = [Attempt.mode == "submit", Attempt.status == AttemptStatus.DONE.value,
               Attempt.verdict != Verdict.INTERNAL_ERROR.value, User.role == Role.STUDENT.value]
    attempts = session.execute(
        select(Attempt.id, Attempt.problem_id, Attempt.user_id, Attempt.verdict,
               Attempt.report["diagnosis"].as_string(), Attempt.report["message"].as_string())
        .join(User, User.id == Attempt.user_id).where(*counted).order_by(Attempt.id)).all()
    failed = {a_id: _Failed(verdict, diagnosis, message)
              for a_id, _, _, verdict, diagnosis, message in attempts if verdict != Verdict.ACCEPTED.value}
    for attempt_id, name, status, stage, message in session.execute(
            select(AttemptTest.attempt_id, AttemptTest.name, AttemptTest.status, AttemptTest.stage,
                   AttemptTest.message)
            .join(Attempt, Attempt.id == AttemptTest.attempt_id).join(User, User.id == Attempt.user_id)
            .where(*counted, Attempt.verdict != Verdict.ACCEPTED.value, AttemptTest.status != "passed")
            .order_by(AttemptTest.attempt_id, AttemptTest.position)):
        failed[attempt_id].tests.append((name, status, stage, message))
    by_problem: dict[str, list[tuple[int, int, str | None, str | None]]] = defaultdict(list)
    for a_id, problem_id, user_id, verdict, diagnosis, _ in attempts:
        by_problem[problem_id].append((a_id, user_id, verdict, diagnosis))
    out = []
    for loaded in problems:
        stats = ProblemStats(id=loaded.id, title=loaded.problem.title)
        tries: Counter[int] = Counter()
        to_accept: dict[int, int] = {}
        failures: dict[tuple[str, str, str | None], FailureGroup] = {}
        diagnoses: Counter[str] = Counter()
        for a_id, user_id, verdict, diagnosis in by_problem.get(loaded.id, []):
            tries[user_id] += 1
            if verdict == Verdict.ACCEPTED.value:
                to_accept.setdefault(user_id, tries[user_id])
                continue
            key = failed[a_id].key()
            group = failures.setdefault(key, FailureGroup(*key, example=failed[a_id].example()))
            group.count += 1
            if diagnosis:
                diagnoses[diagnosis] += 1
        stats.attempts, stats.students, stats.solved = sum(tries.values()), len(tries), len(to_accept)
        stats.solve_rate = stats.solved / stats.students if stats.students else None
        stats.median_attempts_to_accept = float(statistics.median(to_accept.values())) if to_accept else None
        # Most common first; ties in order of first appearance (sorted is stable).
        stats.top_failures = sorted(failures.values(), key=lambda g: -g.count)[:TOP_N]
        stats.top_diagnoses = diagnoses.most_common(TOP_N)
        out.append(stats)
    return out


def student_progress(session: Session) -> list[StudentProgress]:
    """Every student with the problems they solved and their Submit count, by username."""
    users = session.scalars(select(User).where(User.role == Role.STUDENT.value).order_by(User.username)).all()
    progress: dict[int, list[Progress]] = defaultdict(list)
    for p in session.scalars(select(Progress)):
        progress[p.user_id].append(p)
    return [StudentProgress(username=u.username, solved=sum(p.solved for p in progress[u.id]),
                            attempts=sum(p.attempts for p in progress[u.id]),
                            solved_problems=sorted(p.problem_id for p in progress[u.id] if p.solved))
            for u in users]


def grades_csv(session: Session, bank: ProblemBank) -> str:
    """The grade sheet: one row per student; per listed problem 1 when solved (an accepted Submit) else 0;
    then the number solved."""
    problems, _ = list_problems(bank=bank)
    ids = [p.id for p in problems]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["username", *ids, "total"])
    for student in student_progress(session):
        solved = set(student.solved_problems)
        marks = [1 if pid in solved else 0 for pid in ids]
        writer.writerow([safe_cell(student.username), *marks, sum(marks)])
    return buffer.getvalue()


@dataclass
class Flip:
    attempt_id: int
    username: str
    old: str | None
    new: str
    # The student has an instructor's override on this problem in a course: the verdict changed, their course
    # score did not (a regrade never overwrites an override).
    overridden: bool = False


@dataclass
class RegradeResult:
    problem_id: str
    regraded: int
    flipped: list[Flip]
    duration_s: float


def recompute_progress(session: Session, problem_id: str) -> None:
    """Solved and best score follow the attempts as they are now graded (a regrade can take a solve away)."""
    attempts = session.scalars(select(Attempt).where(
        Attempt.problem_id == problem_id, Attempt.mode == "submit", Attempt.status == AttemptStatus.DONE.value,
        Attempt.verdict != Verdict.INTERNAL_ERROR.value).order_by(Attempt.id)).all()
    by_user: dict[int, list[Attempt]] = defaultdict(list)
    for a in attempts:
        by_user[a.user_id].append(a)
    for progress in session.scalars(select(Progress).where(Progress.problem_id == problem_id)):
        mine = by_user.get(progress.user_id, [])
        accepted = [a for a in mine if a.verdict == Verdict.ACCEPTED.value]
        progress.best_score = max((a.score or 0.0 for a in mine), default=0.0)
        progress.solved = bool(accepted)
        progress.solved_at = (accepted[0].finished_at if accepted else None)


def regrade_problem(factory: sessionmaker[Session], grader: Grader, problem_id: str,
                    on_progress: Callable[[int, int, Flip | None], None] | None = None, *,
                    lease_s: float = 60.0, workers: int = 1, may_start: Callable[[int], bool] | None = None,
                    on_start: Callable[[int], None] | None = None) -> RegradeResult:
    """Grade every finished Submit attempt of the problem again against its current version, store the new
    reports (keeping the verdict before in `previous_verdict`), and list the attempts whose verdict changed.
    Each attempt goes through `claims.regrade` (a claim of its own, a fenced write), `workers` at a time, with
    the grader's executor (the server's warm pool). Blocking.

    `on_start(total)` is called once the attempts are counted, `on_progress(done, total, flip)` after each
    attempt (from the worker threads, one at a time). `may_start(in_flight)`: asked before each further attempt
    while others are in flight; False makes this worker wait a moment (students' gradings go first). One
    attempt is always allowed, so the regrade progresses.
    """
    start = time.monotonic()
    loaded = grader.bank.get(problem_id)
    if loaded is None:
        raise LookupError(problem_id)
    with factory() as session:
        todo = session.execute(
            select(Attempt.id, User.username).join(User, User.id == Attempt.user_id)
            .where(Attempt.problem_id == problem_id, Attempt.mode == "submit",
                   Attempt.status == AttemptStatus.DONE.value).order_by(Attempt.id)).all()
    if on_start is not None:
        on_start(len(todo))
    flipped: list[Flip] = []
    hold = max_hold_s(grader, loaded)
    lock = threading.Lock()
    pending = list(reversed(todo))
    state = {"done": 0, "in_flight": 0}

    def grade(held: claims.Claim) -> Report:
        return grader.grade_loaded(loaded, held.code, mode="submit")

    def take() -> tuple[int, str] | None:
        while True:
            with lock:
                if not pending:
                    return None
                if state["in_flight"] == 0 or may_start is None or may_start(state["in_flight"]):
                    state["in_flight"] += 1
                    return pending.pop()
            time.sleep(0.1)

    def one(attempt_id: int, username: str) -> None:
        # (None: deleted, put back in the queue, or held by another regrade meanwhile: that one decides.)
        regraded = claims.regrade(factory, attempt_id, grade, problem_hash=loaded.content_hash,
                                  worker=f"regrade:{os.getpid()}", lease_s=lease_s, max_hold_s=hold)
        flip = None
        if regraded is not None and regraded.stored and regraded.old != regraded.new:
            with factory() as session:
                overridden = regraded.user_id in overridden_users(session, problem_id)
            flip = Flip(attempt_id=attempt_id, username=username, old=regraded.old, new=regraded.new,
                        overridden=overridden)
        with lock:
            state["done"] += 1
            state["in_flight"] -= 1
            if flip is not None:
                flipped.append(flip)
            if on_progress is not None:
                on_progress(state["done"], len(todo), flip)

    def work() -> None:
        while (item := take()) is not None:
            try:
                one(*item)
            except BaseException:
                with lock:
                    state["in_flight"] -= 1
                raise

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix=f"gradax-regrade-{problem_id}") as pool:
        for future in [pool.submit(work) for _ in range(max(1, min(workers, len(todo))))]:
            future.result()
    with factory() as session:
        recompute_progress(session, problem_id)
        refresh_problem(session, problem_id, reason="regrade")
        session.commit()
    flipped.sort(key=lambda f: f.attempt_id)
    return RegradeResult(problem_id=problem_id, regraded=len(todo), flipped=flipped,
                         duration_s=time.monotonic() - start)


def recorded_flips(session: Session, problem_id: str, since: datetime | None = None) -> list[Flip]:
    """Attempts of the problem whose latest regrade (at or after `since`) changed their verdict, newest first."""
    rows = session.execute(
        select(Attempt.id, User.username, Attempt.previous_verdict, Attempt.verdict, Attempt.user_id)
        .join(User, User.id == Attempt.user_id)
        .where(Attempt.problem_id == problem_id, Attempt.regraded_at.is_not(None),
               Attempt.previous_verdict.is_distinct_from(Attempt.verdict),
               *([Attempt.regraded_at >= since] if since is not None else []))
        .order_by(Attempt.regraded_at.desc(), Attempt.id)).all()
    overridden = overridden_users(session, problem_id)
    return [Flip(attempt_id=i, username=u, old=old, new=new or "", overridden=uid in overridden)
            for i, u, old, new, uid in rows]


def problem_exists(session: Session, problem_id: str) -> bool:
    return session.get(Problem, problem_id) is not None
