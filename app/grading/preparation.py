"""The server prepares its problem bank in the background, so students never wait for a problem's first use.

What preparing a problem means (reference and known-mistake outputs, compile profile, replay cache) is
graders/prepare.py's; this module decides when and in which order, inside `gradax serve`:
- at start, and after a reload or an upload, every problem whose current version is not prepared is queued,
  in curriculum order, and prepared by `workers` background threads (each waits on a trusted child process);
- a submission for a problem not prepared yet moves that problem to the front of the queue (`urgent`), and the
  grading thread that takes the attempt prepares it itself if nobody has started (`ensure`): the problem lock
  in the data dir (graders/prepare.py) makes sure one of them computes and the other reads;
- `waits_for` says whether an attempt of the problem is waiting for its problem's preparation, which the
  submission's `phase` and the problem page show as "preparing this problem (first use)", not as its run.
A problem whose preparation failed is not retried in the background (its gradings compute what they need, and
say what is wrong); its next version is.
Every problem found prepared at start, and each one prepared later, is offered to `on_prepared` (the server's
warm pool keeps spare children of prepared problems, so a problem's first submission finds one ready).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from app.services.problems import list_problems
from graders.prepare import Preparer, ProblemPrepared, ensure_data_dirs
from graders.problem import LoadedProblem, ProblemBank

log = logging.getLogger("gradax.prepare")


class BankPreparation:
    def __init__(self, bank: ProblemBank, preparer: Preparer, *, workers: int = 1, background: bool = True,
                 grades_here: bool = True, warm: bool = True,
                 on_prepared: Callable[[LoadedProblem], None] | None = None):
        self.bank, self.preparer = bank, preparer
        self.on_prepared = on_prepared if grades_here and warm else None
        self.workers = max(1, workers)
        self.background = background
        # Cold starts (GRADAX_POOL=cold) use no compile profile: what an attempt waits for is its problem's
        # reference outputs alone, which the engine computes on first use; nothing else is prepared for it.
        self.warm = warm
        # False: this process does not grade students' attempts (`gradax worker`s do, with caches of their own),
        # so it cannot say that an attempt waits for a preparation; it still prepares for its own regrades.
        self.grades_here = grades_here
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()  # problem ids, the next first
        self._busy: set[str] = set()  # content hashes being prepared now (by a background thread or a grader)
        self._prepared: set[str] = set()  # content hashes known to be prepared
        self._failed: dict[str, str] = {}  # content hash -> why
        self.started: deque[str] = deque(maxlen=1000)  # problem ids in the order their preparation began here
        self.finished: deque[str] = deque(maxlen=1000)  # problem ids in the order their preparation ended here
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create what the sandbox binds (before the warm pool's zygote starts), then queue the whole bank."""
        ensure_data_dirs(self.preparer.settings)
        if self.on_prepared is not None:
            threading.Thread(target=self._offer_prepared, name="gradax-offer-prepared", daemon=True).start()
        if not self.background:
            return
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"gradax-prepare-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.refresh()

    def stop(self, timeout: float = 2.0) -> None:
        """Take nothing new (a preparation in progress finishes in its own trusted process, or dies with us)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def refresh(self) -> None:
        """Queue every problem of the bank whose current version is not prepared (at start, after a reload)."""
        if not self.background:
            return
        todo = [p.id for p in list_problems(bank=self.bank)[0] if self._waits(p)]
        with self._cond:
            for problem_id in todo:
                if problem_id not in self._queue:
                    self._queue.append(problem_id)
            self._cond.notify_all()
        if todo:
            log.info("preparing %d problems in the background: %s", len(todo), ", ".join(todo))

    # -- questions -----------------------------------------------------------------------------------------

    def waits_for(self, problem_id: str) -> bool:
        """True while the problem's current version is not prepared here and its preparation has not failed
        (always False where students' attempts are graded by other processes)."""
        loaded = self.bank.get(problem_id) if self.grades_here else None
        return loaded is not None and self._waits(loaded)

    def _waits(self, loaded: LoadedProblem) -> bool:
        key = loaded.content_hash
        with self._cond:
            if key in self._prepared or key in self._failed:
                return False
        # File checks: another process (gradax prepare, a lazy first grading) may have prepared it.
        if self.preparer.is_prepared(loaded):
            with self._cond:
                self._prepared.add(key)
            return False
        return self.warm or not self.preparer.references.is_stored(loaded)

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return {"queued": list(self._queue), "preparing": len(self._busy), "prepared": len(self._prepared),
                    "failed": len(self._failed)}

    # -- moving a problem to the front ---------------------------------------------------------------------

    def urgent(self, problem_id: str) -> None:
        """A student is waiting for this problem: prepare it next."""
        if not self.background or not self.waits_for(problem_id):
            return
        with self._cond:
            if problem_id in self._queue:
                self._queue.remove(problem_id)
            self._queue.appendleft(problem_id)
            self._cond.notify_all()

    def ensure(self, loaded: LoadedProblem) -> ProblemPrepared | None:
        """Prepare this problem now, in the calling thread (a grading thread with an attempt of it), unless it
        is prepared; if a background thread is on it, this waits for it on the problem's lock and reads. Cold
        starts: nothing (the engine computes the reference outputs it needs on first use)."""
        if not self.warm or not self._waits(loaded):
            return None
        return self._prepare(loaded)

    # -- the work ------------------------------------------------------------------------------------------

    def _prepare(self, loaded: LoadedProblem) -> ProblemPrepared:
        key = loaded.content_hash
        with self._cond:
            self._busy.add(key)
            self.started.append(loaded.id)
        try:
            done = self.preparer.prepare_one(loaded)
        finally:
            with self._cond:
                self._busy.discard(key)
        with self._cond:
            if done.status == "failed":
                self._failed[key] = done.error or "failed"
            else:
                self._prepared.add(key)
            self.finished.append(loaded.id)
            self._cond.notify_all()
        if done.status != "failed" and self.on_prepared is not None:
            # Its own thread: the pool may first have to start its zygote, and this may be a grading thread.
            threading.Thread(target=self._offer, args=(loaded,), name="gradax-offer-prepared", daemon=True).start()
        log.log(logging.WARNING if done.status == "failed" else logging.INFO, "prepare %s: %s in %.1f s%s",
                loaded.id, done.status, done.duration_s, f": {done.error}" if done.error else "")
        return done

    def _offer_prepared(self) -> None:
        """Offer the problems already prepared (by `gradax prepare`, the image build, an earlier run)."""
        for loaded in list_problems(bank=self.bank)[0]:
            if self._stop.is_set():
                return
            if self.preparer.is_prepared(loaded):
                self._offer(loaded)

    def _offer(self, loaded: LoadedProblem) -> None:
        if self.on_prepared is None:
            return
        try:
            self.on_prepared(loaded)
        except Exception:  # the pool's spares are an optimisation: never let them break preparation
            log.exception("offering %s to the warm pool failed", loaded.id)

    def _next(self) -> LoadedProblem | None:
        with self._cond:
            while not self._stop.is_set():
                while self._queue:
                    loaded = self.bank.get(self._queue.popleft())
                    if loaded is not None and loaded.content_hash not in self._busy:
                        return loaded
                self._cond.wait(5.0)
        return None

    def _work(self) -> None:
        while (loaded := self._next()) is not None:
            try:
                if self._waits(loaded):
                    self._prepare(loaded)
            except Exception:  # prepare_one reports failures itself; this is a bug, keep the thread alive
                log.exception("background preparation of %s failed", loaded.id)
