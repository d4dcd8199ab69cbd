"""Regrades run in the background, several attempts at once, and keep their progress in the database.

An instructor's regrade of a problem first prepares the problem's current version (reference outputs and
compile profile, once, instead of in the first gradings), then grades every finished Submit again through
`claims.regrade` (a claim per attempt, a fenced write: claims stay the only writer of attempts) with the
server's grader, i.e. its warm pool, `workers` at a time (the machine's grading slots), students' gradings
first. The job's row (`regrade_jobs`) holds its progress, so the page shows done/total and an estimate after a
reload, and a job whose runner stopped (a restart) reads as interrupted instead of running for ever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import RegradeJob, utcnow
from app.services.heartbeat import beating, expire_stale, interrupt_left_running, runner_name
from app.services.instructor import Flip, recorded_flips, regrade_problem
from graders.engine import Grader
from graders.problem import LoadedProblem

log = logging.getLogger("gradax.regrade")
# A running job's runner touches its row this often; a row untouched for STALE_S has no runner any more.
HEARTBEAT_S = 2.0
STALE_S = 30.0


@dataclass
class RegradeView:
    """A regrade job as the API and the page show it."""

    id: int
    problem_id: str
    status: str  # running, done, failed, interrupted
    phase: str  # preparing, grading (while running)
    total: int | None
    done: int
    workers: int
    flipped: list[Flip]
    error: str | None
    duration_s: float
    eta_s: float | None  # about this many seconds until it is done (None: not known yet)
    per_s: float | None  # attempts regraded per second so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RegradeJobs:
    """Starts regrade jobs in this process and reads any job from the database."""

    def __init__(self, factory: sessionmaker[Session], grader: Grader, *, lease_s: float = 60.0, workers: int = 1,
                 prepare: Callable[[LoadedProblem], object] | None = None,
                 students_grading: Callable[[], int] | None = None):
        self.factory, self.grader, self.lease_s = factory, grader, lease_s
        self.workers = max(1, workers)
        self.prepare = prepare  # the problem's reference outputs and compile profile, before its gradings
        self.students_grading = students_grading  # gradings of students' attempts in progress in this process
        self.runner = runner_name()

    # -- reading -----------------------------------------------------------------------------------------

    def get(self, problem_id: str) -> RegradeView | None:
        """The latest regrade of the problem (a running one whose runner stopped reads as interrupted)."""
        self._expire_stale(problem_id)
        with self.factory() as session:
            job = session.scalars(select(RegradeJob).where(RegradeJob.problem_id == problem_id)
                                  .order_by(RegradeJob.id.desc()).limit(1)).first()
            return self._view(session, job) if job is not None else None

    def _view(self, session: Session, job: RegradeJob) -> RegradeView:
        now = utcnow()
        duration = ((job.finished_at or now) - job.started_at).total_seconds()
        eta = per_s = None
        if job.grading_started_at is not None and job.done > 0:
            grading = max(1e-3, ((job.finished_at or now) - job.grading_started_at).total_seconds())
            per_s = job.done / grading
            if job.status == "running" and job.total is not None:
                eta = max(0.0, (job.total - job.done) / per_s)
        return RegradeView(id=job.id, problem_id=job.problem_id, status=job.status, phase=job.phase,
                           total=job.total, done=job.done, workers=job.workers,
                           flipped=recorded_flips(session, job.problem_id, since=job.started_at),
                           error=job.error, duration_s=round(duration, 2),
                           eta_s=round(eta, 1) if eta is not None else None,
                           per_s=round(per_s, 2) if per_s is not None else None)

    def _expire_stale(self, problem_id: str | None = None) -> int:
        """Running jobs whose runner stopped sending heartbeats (a restart, a crash) become interrupted."""
        with session_scope(self.factory) as session:
            return expire_stale(session, RegradeJob, stale_s=STALE_S,
                                error="the server running this regrade stopped; start it again",
                                where=RegradeJob.problem_id == problem_id if problem_id is not None else None)

    def recover(self) -> None:
        """At start: jobs this host's previous process left running are interrupted now (not in STALE_S)."""
        with session_scope(self.factory) as session:
            interrupt_left_running(session, RegradeJob, runner=self.runner,
                                   error="the server restarted during this regrade; start it again")
        self._expire_stale()

    # -- running -----------------------------------------------------------------------------------------

    def start(self, problem_id: str, started_by: int | None = None) -> RegradeView:
        """Start a regrade of the problem, or return the one still running (two at once would race)."""
        loaded = self.grader.bank.get(problem_id)
        if loaded is None:
            raise LookupError(problem_id)
        self._expire_stale(problem_id)
        try:
            with session_scope(self.factory) as session:
                job = RegradeJob(problem_id=problem_id, status="running", phase="preparing", workers=self.workers,
                                 runner=self.runner, started_by=started_by)
                session.add(job)
                session.flush()
                job_id = job.id
        except IntegrityError:  # one is running (the partial unique index): that one is the answer
            view = self.get(problem_id)
            assert view is not None
            return view
        threading.Thread(target=self._run, args=(job_id, loaded), name=f"gradax-regrade-{problem_id}",
                         daemon=True).start()
        view = self.get(problem_id)
        assert view is not None
        return view

    def _set(self, job_id: int, **values: Any) -> None:
        with session_scope(self.factory) as session:
            session.execute(update(RegradeJob).where(RegradeJob.id == job_id)
                            .values(heartbeat_at=utcnow(), **values))

    def _run(self, job_id: int, loaded: LoadedProblem) -> None:
        with beating(lambda: self._set(job_id), HEARTBEAT_S, f"gradax-regrade-{job_id}"):
            self._regrade(job_id, loaded)

    def _regrade(self, job_id: int, loaded: LoadedProblem) -> None:
        def started(total: int) -> None:
            self._set(job_id, phase="grading", total=total, grading_started_at=utcnow())

        def progress(done: int, total: int, flip: Flip | None) -> None:
            self._set(job_id, done=done, total=total,
                      **({"flipped": RegradeJob.flipped + 1} if flip is not None else {}))

        def may_start(in_flight: int) -> bool:
            busy = self.students_grading() if self.students_grading is not None else 0
            return in_flight + busy < self.workers

        try:
            if self.prepare is not None:
                self.prepare(loaded)
            result = regrade_problem(self.factory, self.grader, loaded.id, on_progress=progress,
                                     lease_s=self.lease_s, workers=self.workers, may_start=may_start,
                                     on_start=started)
            self._set(job_id, status="done", phase="grading", total=result.regraded, done=result.regraded,
                      finished_at=utcnow())
            log.info("regrade of %s: %d attempts in %.1f s, %d flipped", loaded.id, result.regraded,
                     result.duration_s, len(result.flipped))
        except Exception as exc:
            log.exception("regrade of %s failed", loaded.id)
            self._set(job_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:500], finished_at=utcnow())
