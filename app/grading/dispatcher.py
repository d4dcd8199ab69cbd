"""Hands queued attempts to grading threads and stores their reports.

The attempt row is the source of truth: it is committed as `queued` before it is enqueued here, so
anything lost from this in-process queue (full queue, crash) is found again by the sweep or at start-up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import ACTIVE_STATUSES, Attempt, AttemptStatus, utcnow
from app.services.attempts import record_report
from graders.engine import Grader, Mode
from graders.report import Report, Verdict

log = logging.getLogger("gradax.dispatcher")

# How often the sweeper looks for queued attempts that never reached the in-process queue.
SWEEP_INTERVAL_S = 2.0
# Backoff before a retry after an internal_error, so a transient failure has time to clear.
RETRY_DELAY_S = 1.0


class Dispatcher:
    def __init__(self, session_factory: sessionmaker[Session], grader: Grader, *, workers: int,
                 queue_size: int, retries: int):
        self.session_factory = session_factory
        self.grader = grader
        self.workers = workers
        self.retries = retries
        self.queue: queue.Queue[int] = queue.Queue(maxsize=queue_size)
        self._pending: set[int] = set()  # ids in the queue or being graded: never enqueue twice
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Requeue what a previous process left unfinished, then start the grading threads."""
        if self.workers <= 0:
            return
        self.recover()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"gradax-grader-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        sweeper = threading.Thread(target=self._sweep_loop, name="gradax-sweeper", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def recover(self) -> int:
        """Attempts left `running` by a crash go back to `queued`; every queued attempt is enqueued."""
        with session_scope(self.session_factory) as session:
            stale = session.scalars(select(Attempt).where(Attempt.status == AttemptStatus.RUNNING.value)).all()
            for attempt in stale:
                attempt.status = AttemptStatus.QUEUED.value
        if stale:
            log.warning("requeued %d attempts left running by a previous process", len(stale))
        return self.sweep()

    def sweep(self) -> int:
        with self.session_factory() as session:
            ids = session.scalars(select(Attempt.id).where(Attempt.status == AttemptStatus.QUEUED.value)
                                  .order_by(Attempt.id)).all()
        return sum(self.submit(i) for i in ids)

    # -- enqueueing ------------------------------------------------------------------------------

    def submit(self, attempt_id: int) -> bool:
        """Enqueue a committed attempt. False when already pending or the queue is full (the sweep retries)."""
        if self.workers <= 0:
            return False
        with self._lock:
            if attempt_id in self._pending:
                return False
            try:
                self.queue.put_nowait(attempt_id)
            except queue.Full:
                log.warning("grading queue full; attempt %d waits for the sweep", attempt_id)
                return False
            self._pending.add(attempt_id)
        return True

    def _sweep_loop(self) -> None:
        while not self._stop.wait(SWEEP_INTERVAL_S):
            try:
                self.sweep()
            except Exception:
                log.exception("sweep failed")

    # -- grading ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                attempt_id = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            retry = False
            try:
                retry = self.grade_attempt(attempt_id)
            except Exception:
                log.exception("grading attempt %d failed outside the grader", attempt_id)
            finally:
                with self._lock:
                    self._pending.discard(attempt_id)
                self.queue.task_done()
            if retry and not self._stop.wait(RETRY_DELAY_S):
                self.submit(attempt_id)

    def _claim(self, attempt_id: int) -> tuple[str, str, Mode] | None:
        with session_scope(self.session_factory) as session:
            attempt = session.get(Attempt, attempt_id)
            if attempt is None or attempt.status != AttemptStatus.QUEUED.value:
                return None
            attempt.status = AttemptStatus.RUNNING.value
            attempt.started_at = utcnow()
            attempt.tries += 1
            mode: Mode = "run" if attempt.mode == "run" else "submit"
            return attempt.problem_id, attempt.code, mode

    def grade_attempt(self, attempt_id: int) -> bool:
        """Grade one queued attempt and store the result. True when it failed on the grader's side and was
        put back in the queue for another try (bounded by `retries`)."""
        claimed = self._claim(attempt_id)
        if claimed is None:
            return False
        problem_id, code, mode = claimed
        loaded = self.grader.bank.get(problem_id)
        if loaded is None:
            report = Report(problem=problem_id, verdict=Verdict.INTERNAL_ERROR, mode=mode,
                            message="This problem is no longer available on the server.")
        else:
            report = self.grader.grade_loaded(loaded, code, mode=mode)
        retry = False
        with session_scope(self.session_factory) as session:
            attempt = session.get(Attempt, attempt_id)
            if attempt is None or attempt.status not in ACTIVE_STATUSES:
                return False
            if report.verdict == Verdict.INTERNAL_ERROR and loaded is not None and attempt.tries <= self.retries:
                log.warning("attempt %d: internal error (try %d of %d), retrying: %s", attempt_id, attempt.tries,
                            self.retries + 1, report.message)
                attempt.status = AttemptStatus.QUEUED.value
                retry = True
            else:
                if loaded is not None:
                    attempt.problem_hash = loaded.content_hash
                record_report(session=session, attempt=attempt, report=report)
        return retry
