"""Hands queued attempts to grading threads and stores their reports.

The attempt row is the source of truth: it is committed as `queued` before it is enqueued here, so
anything lost from this in-process queue (full queue, crash) is found again by the sweep or at start-up.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.grading import claims
from app.grading.backend import grade_claimed
from app.models import Attempt, AttemptStatus, utcnow
from graders.engine import Grader

log = logging.getLogger("gradax.dispatcher")

# How often the sweeper looks for queued attempts that never reached the in-process queue.
SWEEP_INTERVAL_S = 2.0
# Backoff before a retry after an internal_error, so a transient failure has time to clear.
RETRY_DELAY_S = 1.0
# In-process claims are released by this process (graceful stop) or by the next start (`recover`), never by
# lease expiry, so the lease only has to outlive any grading.
INPROCESS_LEASE_S = 24 * 3600.0


class Dispatcher:
    def __init__(self, session_factory: sessionmaker[Session], grader: Grader, *, workers: int,
                 queue_size: int, retries: int, on_done: Callable[[int], None] | None = None):
        self.session_factory = session_factory
        self.on_done = on_done  # told each attempt id whose result was just committed (wakes long polls)
        self.grader = grader
        self.workers = workers
        self.retries = retries
        self.queue: queue.Queue[int] = queue.Queue(maxsize=queue_size)
        self._pending: set[int] = set()  # ids in the queue or being graded: never enqueue twice
        self._held: dict[int, claims.Claim] = {}  # attempts being graded right now, by id
        self.worker_name = f"inprocess:{os.getpid()}"
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

    def stop(self, timeout: float = 5.0) -> int:
        """Graceful stop: take nothing new, let gradings in progress finish for up to `timeout` seconds, then
        put the attempts still being graded back to `queued` for the next start. Returns how many."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        with self._lock:
            unfinished = list(self._held.values())
        released = 0
        for held in unfinished:
            # Guarded by the claim token: if the grading finished meanwhile, its result stands; if it finishes
            # later, its write is fenced out (claims.finish finds the token gone) and the next start grades it.
            with session_scope(self.session_factory) as session:
                released += self._release(session, held.attempt_id, held.token, "interrupted")
        if released:
            log.warning("shutdown: %d attempts still grading after %.0f s were put back in the queue",
                        released, timeout)
        return released

    def _release(self, session: Session, attempt_id: int, token: str | None, outcome: str) -> int:
        moved = claims._changed(session,
            update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.status == AttemptStatus.RUNNING.value,
                   Attempt.claim_token.is_(None) if token is None else Attempt.claim_token == token)
            .values(status=AttemptStatus.QUEUED.value, claim_token=None, lease_expires_at=None))
        if moved and token is not None:
            claims._close_claim(session, token, outcome, utcnow())
        return moved

    def recover(self) -> int:
        """Attempts left `running` by a crash go back to `queued`; every queued attempt is enqueued.

        The embedded server is the only in-process grader of its database, so at start every `running` row
        belongs to a process that is gone. An attempt that was interrupted again and again (say it takes the
        whole server down) is not retried for ever: past `retries + 2` tries it is stored as internal_error.
        """
        with self.session_factory() as session:
            stale = session.execute(select(Attempt.id, Attempt.claim_token, Attempt.tries)
                                    .where(Attempt.status == AttemptStatus.RUNNING.value)).all()
        requeued = abandoned = 0
        for attempt_id, token, tries in stale:
            with session_scope(self.session_factory) as session:
                if tries >= self.retries + 2:
                    abandoned += claims._abandon(session, attempt_id, token, tries, utcnow())
                else:
                    requeued += self._release(session, attempt_id, token, "expired")
        if requeued or abandoned:
            log.warning("start-up: requeued %d attempts left running by a previous process, abandoned %d",
                        requeued, abandoned)
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

    def grade_attempt(self, attempt_id: int) -> bool:
        """Grade one queued attempt and store the result. True when it failed on the grader's side and was
        put back in the queue for another try (bounded by `retries`).

        Through the claim protocol (claims.py), like queue workers: every grading leaves a `grading_claims`
        row, and the result is written only under the claim that is still current, so an attempt released by
        a graceful stop or a restart never gets two results."""
        held = claims.claim(self.session_factory, attempt_id, worker=self.worker_name, lease_s=INPROCESS_LEASE_S)
        if held is None:
            return False
        with self._lock:
            self._held[attempt_id] = held
        try:
            loaded = self.grader.bank.get(held.problem_id)
            report = grade_claimed(self.grader, loaded, held, where="server")
            outcome = claims.finish(self.session_factory, held, report,
                                    problem_hash=loaded.content_hash if loaded is not None else None,
                                    retries=self.retries, retryable=loaded is not None)
        finally:
            with self._lock:
                self._held.pop(attempt_id, None)
        if outcome is claims.Finish.DONE and self.on_done is not None:
            try:
                self.on_done(attempt_id)
            except Exception:  # a waiter that cannot be woken re-reads the row on its own shortly
                log.exception("attempt %d: notifying waiters failed", attempt_id)
        return outcome is claims.Finish.RETRY
