"""Grading beside idle runs, for the server's grading threads and for `gradax worker`s alike.

A run that has neither used nor waited for a CPU for `IDLE_RUN_S` (it sleeps, blocks or stopped itself:
graders/run_activity.py) still holds its slot until the wall-clock backstop (3x its CPU limit, a minute for most
problems), and a few accounts whose submissions sleep would otherwise stall everyone's feedback that long. So beside
such runs one more attempt may be graded, up to as many more as there are grading slots. Fair share still holds (one
running attempt per author), so the sleepers' own next attempts wait behind them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app.grading import claims
from app.grading.capacity import RESERVE_MB
from graders import run_activity
from graders.machine import memory_available_mb

log = logging.getLogger("gradax.dispatcher")

IDLE_RUN_S = 2.0
POLL_S = 0.5


class BesideIdleRuns:
    """Which thread grades which attempt, and whether one more may be graded beside idle runs (`slots` regular
    grading threads, each grading needing `slot_memory_mb` of memory)."""

    def __init__(self, slots: int, slot_memory_mb: int):
        self.slots = slots
        self.slot_memory_mb = slot_memory_mb
        self._graded_by: dict[int, int] = {}  # attempt id -> ident of the thread grading it
        self._lock = threading.Lock()
        # One beside thread at a time looks and claims, and counts its attempt before the next looks: two that saw
        # the same idle run would otherwise both grade beside it.
        self._looking = threading.Lock()

    def started(self, attempt_id: int) -> None:
        """The calling thread grades this attempt now (its runs are watched by this thread: run_activity)."""
        with self._lock:
            self._graded_by[attempt_id] = threading.get_ident()

    def ended(self, attempt_id: int) -> None:
        with self._lock:
            self._graded_by.pop(attempt_id, None)

    def may_grade_beside(self) -> bool:
        """Every grading slot is busy, and more of their runs are idle than gradings already run beside them."""
        with self._lock:
            graders = list(self._graded_by.values())
        if len(graders) < self.slots or len(graders) >= 2 * self.slots:
            return False
        idle = run_activity.idle_threads(IDLE_RUN_S)
        if sum(ident in idle for ident in graders) <= len(graders) - self.slots:
            return False
        # The idle run keeps its memory: another child beside it needs the memory a slot is counted with.
        available = memory_available_mb()
        return available is None or available >= self.slot_memory_mb + RESERVE_MB

    def run(self, stop: threading.Event, claim: Callable[[], claims.Claim | None],
            grade: Callable[[claims.Claim], object]) -> None:
        """A grading thread that takes an attempt (`claim`) only while a run graded here is idle, and `grade`s it."""
        while not stop.wait(POLL_S):
            with self._looking:
                try:
                    held = claim() if self.may_grade_beside() else None
                except Exception:  # the database could not say: look again next time
                    log.exception("could not take an attempt to grade")
                    held = None
                if held is None:
                    continue
                self.started(held.attempt_id)
            log.info("attempt %d: graded beside an idle run", held.attempt_id)
            try:
                grade_or_leave_to_sweeper(grade, held)
            finally:
                self.ended(held.attempt_id)


def grade_or_leave_to_sweeper(grade: Callable[[claims.Claim], object], held: claims.Claim) -> None:
    """`grade(held)`, for a grading thread that must outlive a failed grading."""
    try:
        grade(held)
    except Exception:
        # Typically the database refused even the reduced report: the claim is no longer renewed, so its lease
        # expires and the sweeper queues the attempt again.
        log.exception("attempt %d: grading could not be completed; the sweeper will retry it", held.attempt_id)
