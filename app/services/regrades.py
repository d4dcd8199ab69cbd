"""Regrades run in a background thread, one per problem at a time, so a class's worth of attempts (seconds
each) never holds an HTTP request open; pages and the API poll the job."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.services.instructor import Flip, regrade_problem
from graders.engine import Grader

log = logging.getLogger("gradax.regrade")


@dataclass
class RegradeJob:
    problem_id: str
    status: str = "running"  # running, done, failed
    total: int | None = None
    done: int = 0
    flipped: list[Flip] = field(default_factory=list)
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        return data


class RegradeJobs:
    """The latest regrade job of each problem, in this process."""

    def __init__(self, factory: sessionmaker[Session], grader: Grader, *, lease_s: float = 60.0):
        self.factory, self.grader, self.lease_s = factory, grader, lease_s
        self._jobs: dict[str, RegradeJob] = {}
        self._lock = threading.Lock()

    def get(self, problem_id: str) -> RegradeJob | None:
        with self._lock:
            return self._jobs.get(problem_id)

    def start(self, problem_id: str) -> RegradeJob:
        """Start a regrade of the problem, or return the one still running (two at once would race)."""
        with self._lock:
            job = self._jobs.get(problem_id)
            if job is not None and job.status == "running":
                return job
            job = self._jobs[problem_id] = RegradeJob(problem_id)
        threading.Thread(target=self._run, args=(job,), name=f"gradax-regrade-{problem_id}", daemon=True).start()
        return job

    def _run(self, job: RegradeJob) -> None:
        def progress(done: int, total: int, flip: Flip | None) -> None:
            with self._lock:
                job.done, job.total = done, total
                if flip is not None:
                    job.flipped.append(flip)

        try:
            result = regrade_problem(self.factory, self.grader, job.problem_id, on_progress=progress,
                                     lease_s=self.lease_s)
            with self._lock:
                job.total, job.status = result.regraded, "done"
        except Exception as exc:
            log.exception("regrade of %s failed", job.problem_id)
            with self._lock:
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
        finally:
            job.duration_s = time.monotonic() - job.started
