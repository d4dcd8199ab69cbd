"""Grading threads inside the server (the embedded default): they take attempts from the database itself.

The attempt row is the source of truth and the queue: it is committed as `queued` before `submit` wakes a
thread, and each thread asks `claims.claim_next` for the attempt to grade next, so the fair-share rules (one
running attempt per author, a grading-time budget) hold here exactly as for queue workers. A claim is kept
alive by a `claims.Keeper` while its grading runs; if storing the result fails, or a thread dies, the lease
expires and the sweeper (a thread here too) queues the attempt again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.grading import claims
from app.grading.backend import charged_s, grade_claimed, max_hold_s, retry_delay_s
from app.grading.beside import BesideIdleRuns, grade_or_leave_to_sweeper
from app.models import Attempt, AttemptStatus
from graders.engine import Grader
from graders.problem import LoadedProblem

log = logging.getLogger("gradax.dispatcher")

# An idle thread looks at the database this often even when nobody wakes it (an attempt committed by another
# process, a budget that recovered, a retry whose backoff ended).
IDLE_POLL_S = 1.0


class InProcessDispatcher:
    def __init__(self, session_factory: sessionmaker[Session], grader: Grader, *, workers: int, retries: int,
                 lease_s: float = 60.0, sweep_interval_s: float = 2.0, fair: claims.FairShare | None = None,
                 on_done: Callable[[int], None] | None = None,
                 prepare: Callable[[LoadedProblem], object] | None = None, slot_memory_mb: int = 1024):
        self.session_factory = session_factory
        # Prepares a problem not prepared yet (app/grading/preparation.py) before its attempt runs, under the
        # attempt's claim: the wait shows as the attempt's "preparing" phase, not as its own run.
        self.prepare = prepare
        self.on_done = on_done  # told each attempt id whose result was just committed (wakes long polls)
        self.grader = grader
        self.workers = workers
        # Up to `workers` more threads grade beside runs that sleep (app/grading/beside.py); one more grading needs
        # `slot_memory_mb` (settings.grading_slot_memory_mb).
        self.beside = BesideIdleRuns(workers, slot_memory_mb)
        self.retries = retries
        self.lease_s = lease_s
        self.sweep_interval_s = sweep_interval_s
        self.fair = fair or claims.FairShare()
        self.worker_name = f"inprocess:{os.getpid()}"
        self._held: dict[int, claims.Claim] = {}  # attempts being graded right now, by id
        self._backoff: dict[int, float] = {}  # attempt id -> monotonic time before which it is not retried
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._kicks = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Requeue what a previous process left unfinished, then start the grading and sweeping threads."""
        if self.workers <= 0:
            return
        self.recover()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"gradax-grader-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        for i in range(self.workers):
            t = threading.Thread(target=self.beside.run, args=(self._stop, self._claim_next, self._grade),
                                 name=f"gradax-grader-beside-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        sweeper = threading.Thread(target=self._sweep_loop, name="gradax-sweeper", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def stop(self, timeout: float = 5.0) -> int:
        """Graceful stop: take nothing new, let gradings in progress finish for up to `timeout` seconds, then
        put the attempts still being graded back to `queued` for the next start. Returns how many."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        with self._lock:
            unfinished = list(self._held.values())
        released = sum(claims.release(self.session_factory, held) for held in unfinished)
        if released:
            log.warning("shutdown: %d attempts still grading after %.0f s were put back in the queue",
                        released, timeout)
        return released

    def recover(self) -> int:
        """Attempts left `running` by a crash go back to `queued` (claims.recover); returns how many attempts
        are queued now, all of which the grading threads will find."""
        claims.recover(self.session_factory, max_tries=self.retries + 2)
        waiting = self.waiting()
        self._kick(self.workers)
        return waiting

    def grading(self) -> int:
        """Attempts this dispatcher's threads are grading right now."""
        with self._lock:
            return len(self._held)

    def waiting(self) -> int:
        """Queued attempts in the database."""
        with self.session_factory() as session:
            return session.scalar(select(func.count()).select_from(Attempt)
                                  .where(Attempt.status == AttemptStatus.QUEUED.value)) or 0

    def sweep(self) -> claims.SweepResult:
        """Queue again the attempts whose claim expired (a grading thread that died, a result that could not be
        stored), store those interrupted too often, and wake the threads."""
        result = claims.sweep(self.session_factory, requeue_after_s=0, max_tries=self.retries + 2, resend=False)
        for attempt_id in result.abandoned:
            self._notify_done(attempt_id)
        self._kick(self.workers)
        return result

    # -- waking ----------------------------------------------------------------------------------

    def submit(self, attempt_id: int) -> bool:
        """A committed attempt waits: wake a grading thread (it picks whichever attempt is due, fairly)."""
        if self.workers <= 0:
            return False
        self._kick(1)
        return True

    def _kick(self, n: int) -> None:
        with self._wake:
            self._kicks += n
            self._wake.notify(n)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_interval_s):
            try:
                self.sweep()
            except Exception:
                log.exception("sweep failed")

    # -- grading ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            held = self._claim_next()
            if held is None:
                with self._wake:
                    if self._kicks <= 0 and not self._stop.is_set():
                        self._wake.wait(IDLE_POLL_S)
                    self._kicks = max(0, self._kicks - 1)
                continue
            grade_or_leave_to_sweeper(self._grade, held)

    def _claim_next(self) -> claims.Claim | None:
        """The attempt due next, fairly; None when there is none (or the database could not say)."""
        try:
            return claims.claim_next(self.session_factory, worker=self.worker_name, lease_s=self.lease_s,
                                     fair=self.fair, exclude=self._backing_off())
        except Exception:
            log.exception("could not take an attempt to grade")
            return None

    def _backing_off(self) -> list[int]:
        now = time.monotonic()
        with self._lock:
            for attempt_id in [a for a, until in self._backoff.items() if until <= now]:
                del self._backoff[attempt_id]
            return list(self._backoff)

    def grade_attempt(self, attempt_id: int) -> bool:
        """Claim and grade this queued attempt now, in the calling thread. True when it failed on the grader's
        side and was put back in the queue for another try (bounded by `retries`)."""
        held = claims.claim(self.session_factory, attempt_id, worker=self.worker_name, lease_s=self.lease_s)
        if held is None:
            return False
        return self._grade(held) is claims.Finish.RETRY

    def _grade(self, held: claims.Claim) -> claims.Finish:
        """Grade a claimed attempt and store the result under the claim (claims.finish); every grading leaves a
        `grading_claims` row, and a claim released by a graceful stop or a restart writes nothing."""
        with self._lock:
            self._held[held.attempt_id] = held
        self.beside.started(held.attempt_id)
        try:
            loaded = self.grader.bank.get(held.problem_id)
            with claims.Keeper(self.session_factory, held, lease_s=self.lease_s,
                               max_hold_s=max_hold_s(self.grader, loaded)):
                if loaded is not None and self.prepare is not None:
                    self.prepare(loaded)
                report = grade_claimed(self.grader, loaded, held, where="server")
            outcome = claims.finish(self.session_factory, held, report,
                                    problem_hash=loaded.content_hash if loaded is not None else None,
                                    retries=self.retries, retryable=loaded is not None,
                                    cost_s=charged_s(report))
        finally:
            self.beside.ended(held.attempt_id)
            with self._lock:
                self._held.pop(held.attempt_id, None)
        if outcome is claims.Finish.RETRY:
            with self._lock:
                self._backoff[held.attempt_id] = time.monotonic() + retry_delay_s(report, held.tries)
        elif outcome is claims.Finish.DONE:
            self._notify_done(held.attempt_id)
        self._kick(1)  # the author's next attempt may start now
        return outcome

    def _notify_done(self, attempt_id: int) -> None:
        if self.on_done is None:
            return
        try:
            self.on_done(attempt_id)
        except Exception:  # a waiter that cannot be woken re-reads the row on its own shortly
            log.exception("attempt %d: notifying waiters failed", attempt_id)
