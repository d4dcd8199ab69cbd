"""Instructor views: per-problem statistics, per-student progress, the grade sheet (CSV) and regrading.

Statistics count students only: instructors trying their own problems would otherwise skew solve rates.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.grading import claims
from app.grading.backend import max_hold_s
from app.models import Attempt, AttemptStatus, Problem, Progress, Role, User
from app.services.grades import overridden_users, refresh_problem
from app.services.problems import list_problems
from graders.engine import Grader
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


def failure_message(report: dict[str, object] | None) -> str:
    """What went wrong in one attempt: the first failing test's message, else the report's own message."""
    if not report:
        return ""
    for test in report.get("tests") or []:  # type: ignore[attr-defined]
        if isinstance(test, dict) and test.get("status") != "passed" and test.get("message"):
            return str(test["message"]).strip().splitlines()[0][:300]
    return str(report.get("message") or "").strip().splitlines()[0][:300] if report.get("message") else ""


def _error_type(message: str) -> str | None:
    # "TypeError: ..." (public) or "TypeError raised (hidden test): ..." (hidden)
    head = message.split(":", 1)[0].split(" ", 1)[0]
    return head if head.isidentifier() and (head.endswith("Error") or head.endswith("Exception")) else None


def failure_key(report: dict[str, object] | None, verdict: str | None) -> tuple[str, str, str | None]:
    """(first failing test, stage, diagnosis): the stage is the comparison stage that failed (structure, shape,
    finite, values, ...), the exception type for errors, or the verdict when no test ran (syntax errors)."""
    report = report or {}
    diagnosis = report.get("diagnosis")
    diag = str(diagnosis) if diagnosis else None
    for test in report.get("tests") or []:  # type: ignore[attr-defined]
        if not isinstance(test, dict) or test.get("status") in ("passed", "skipped"):
            continue
        status = str(test.get("status"))
        stage = test.get("stage") if status == "failed" else None
        if stage is None and status == "error":
            stage = _error_type(str(test.get("message") or ""))
        return str(test.get("name") or "?"), str(stage or status), diag
    return "", str(report.get("verdict") or verdict or "failed"), diag


def _student_ids(session: Session) -> set[int]:
    return set(session.scalars(select(User.id).where(User.role == Role.STUDENT.value)))


def problem_stats(session: Session) -> list[ProblemStats]:
    """One row per listed problem, in curriculum order, from the students' graded Submit attempts."""
    problems, _ = list_problems(session=session, track=None, offset=0, limit=100_000)
    students = _student_ids(session)
    rows = session.execute(
        select(Attempt.problem_id, Attempt.user_id, Attempt.id, Attempt.verdict, Attempt.report)
        .where(Attempt.mode == "submit", Attempt.status == AttemptStatus.DONE.value,
               Attempt.verdict != Verdict.INTERNAL_ERROR.value)
        .order_by(Attempt.id)).all()
    by_problem: dict[str, list[tuple[int, str | None, dict[str, object] | None]]] = defaultdict(list)
    for problem_id, user_id, _id, verdict, report in rows:
        if user_id in students:
            by_problem[problem_id].append((user_id, verdict, report))
    out = []
    for problem in problems:
        stats = ProblemStats(id=problem.id, title=problem.title)
        attempts = by_problem.get(problem.id, [])
        tries: Counter[int] = Counter()
        to_accept: dict[int, int] = {}
        failures: dict[tuple[str, str, str | None], FailureGroup] = {}
        diagnoses: Counter[str] = Counter()
        for user_id, verdict, report in attempts:
            tries[user_id] += 1
            if verdict == Verdict.ACCEPTED.value:
                to_accept.setdefault(user_id, tries[user_id])
                continue
            key = failure_key(report, verdict)
            group = failures.setdefault(key, FailureGroup(*key, example=failure_message(report)))
            group.count += 1
            diagnosis = (report or {}).get("diagnosis")
            if diagnosis:
                diagnoses[str(diagnosis)] += 1
        stats.attempts, stats.students, stats.solved = len(attempts), len(tries), len(to_accept)
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


def grades_csv(session: Session) -> str:
    """The grade sheet: one row per student; per listed problem 1 when solved (an accepted Submit) else 0;
    then the number solved."""
    problems, _ = list_problems(session=session, track=None, offset=0, limit=100_000)
    ids = [p.id for p in problems]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["username", *ids, "total"])
    for student in student_progress(session):
        solved = set(student.solved_problems)
        marks = [1 if pid in solved else 0 for pid in ids]
        writer.writerow([_safe_cell(student.username), *marks, sum(marks)])
    return buffer.getvalue()


def _safe_cell(value: str) -> str:
    # A cell starting with = + - @ is run as a formula by spreadsheets (CSV injection); usernames cannot start
    # with those today, but the export must stay safe if the rules change.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


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
                    lease_s: float = 60.0) -> RegradeResult:
    """Grade every finished Submit attempt of the problem again against its current version, store the new
    reports (keeping the verdict before in `previous_verdict`), and list the attempts whose verdict changed.
    Each attempt goes through `claims.regrade` (a claim of its own, a fenced write). Blocking: about one
    grading per attempt. `on_progress(done, total, flip)` is called after each attempt."""
    start = time.monotonic()
    loaded = grader.bank.get(problem_id)
    if loaded is None:
        raise LookupError(problem_id)
    with factory() as session:
        todo = session.execute(
            select(Attempt.id, User.username).join(User, User.id == Attempt.user_id)
            .where(Attempt.problem_id == problem_id, Attempt.mode == "submit",
                   Attempt.status == AttemptStatus.DONE.value).order_by(Attempt.id)).all()
    flipped: list[Flip] = []
    hold = max_hold_s(grader, loaded)

    def grade(held: claims.Claim) -> Report:
        return grader.grade_loaded(loaded, held.code, mode="submit")

    for done, (attempt_id, username) in enumerate(todo, start=1):
        # (None: deleted, put back in the queue, or held by another regrade meanwhile: that one decides.)
        regraded = claims.regrade(factory, attempt_id, grade, problem_hash=loaded.content_hash,
                                  worker=f"regrade:{os.getpid()}", lease_s=lease_s, max_hold_s=hold)
        flip = None
        if regraded is not None and regraded.stored and regraded.old != regraded.new:
            with factory() as session:
                overridden = regraded.user_id in overridden_users(session, problem_id)
            flip = Flip(attempt_id=attempt_id, username=username, old=regraded.old, new=regraded.new,
                        overridden=overridden)
            flipped.append(flip)
        if on_progress is not None:
            on_progress(done, len(todo), flip)
    with factory() as session:
        recompute_progress(session, problem_id)
        refresh_problem(session, problem_id, reason="regrade")
        session.commit()
    return RegradeResult(problem_id=problem_id, regraded=len(todo), flipped=flipped,
                         duration_s=time.monotonic() - start)


def recorded_flips(session: Session, problem_id: str) -> list[Flip]:
    """Attempts of the problem whose latest regrade changed their verdict, newest regrade first."""
    rows = session.execute(
        select(Attempt.id, User.username, Attempt.previous_verdict, Attempt.verdict, Attempt.user_id)
        .join(User, User.id == Attempt.user_id)
        .where(Attempt.problem_id == problem_id, Attempt.regraded_at.is_not(None),
               Attempt.previous_verdict.is_distinct_from(Attempt.verdict))
        .order_by(Attempt.regraded_at.desc(), Attempt.id)).all()
    overridden = overridden_users(session, problem_id)
    return [Flip(attempt_id=i, username=u, old=old, new=new or "", overridden=uid in overridden)
            for i, u, old, new, uid in rows]


def problem_exists(session: Session, problem_id: str) -> bool:
    return session.get(Problem, problem_id) is not None
