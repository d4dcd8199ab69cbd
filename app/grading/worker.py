"""`gradax worker`: a Celery worker that claims queued attempts, grades them, and stores the reports.

It grades with the server's own grader (app/grading/backend.py: same executor, warm pool when configured,
same sandbox) and writes through the claim protocol (claims.py), so a message delivered twice, a worker
killed mid-grading or a broker restart never produces two conflicting results. A message names an attempt,
but the worker grades the attempt due next under fair share (`claims.claim_next`): that one when its author
has nothing else running and is within budget, else the oldest attempt of someone who is.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db import make_engine, make_session_factory
from app.grading import claims
from app.grading.backend import build_grader, charged_s, grade_claimed, max_hold_s, retry_delay_s
from app.grading.beside import BesideIdleRuns
from app.grading.celery_app import TASK_NAME, make_celery
from app.grading.preparation import BankPreparation
from app.grading.queue_dispatcher import QueueDispatcher
from app.lti.passback import install_score_listener
from app.models import Problem
from app.observability import schema_state
from graders.engine import Grader
from graders.prepare import Preparer
from graders.problem import LoadedProblem, ProblemBank

log = logging.getLogger("gradax.worker")

# A message for an attempt that may start but could not be claimed just now (another grader holds a moment's lock
# on it) is sent again this much later.
CLAIM_AGAIN_S = 1.0
# A worker whose problem files disagree with the problem table re-reads them at most this often.
RELOAD_MIN_INTERVAL_S = 5.0


def default_worker_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    grader: Grader
    dispatcher: QueueDispatcher
    name: str
    # Task slots (`--concurrency`) and the memory one more grading needs: see `grade_beside_idle_runs`.
    beside: BesideIdleRuns = field(default_factory=lambda: BesideIdleRuns(1, 1024))
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    last_reload: float = float("-inf")
    stop: threading.Event = field(default_factory=threading.Event)
    # Attempts the beside threads (`grade_beside_idle_runs`) grade right now: put back in the queue at a stop.
    beside_held: dict[int, claims.Claim] = field(default_factory=dict)

    def close(self) -> None:
        self.stop.set()
        for held in list(self.beside_held.values()):
            claims.release(self.session_factory, held)
        self.dispatcher.stop()
        self.grader.executor.close()  # the warm pool owns processes
        self.engine.dispose()


def build_context(settings: Settings, *, name: str, sweep: bool, concurrency: int = 1) -> WorkerContext:
    engine = make_engine(settings.sqlalchemy_url)
    current, head = schema_state(engine)
    if current != head:
        engine.dispose()
        raise RuntimeError(f"database schema is at {current}, the code expects {head}: "
                           "start `gradax serve` once (it migrates) before the workers")
    factory = make_session_factory(engine)
    bank = ProblemBank(settings.problems_dir)
    for error in bank.errors:
        log.error("problem file skipped: %s", error)
    grader = build_grader(settings, bank)
    dispatcher = QueueDispatcher(factory, settings, sweep=sweep)
    install_score_listener()  # course score changes this worker stores reach LMS grade passback (app/lti)
    return WorkerContext(settings, engine, factory, grader, dispatcher, name,
                         BesideIdleRuns(concurrency, settings.grading_slot_memory_mb))


def grade_one(ctx: WorkerContext, attempt_id: int, *, thread_name: str | None = None) -> str:
    """Claim, grade and store the attempt due next (this one if it may start now); returns what happened
    ("done", "retry", "stale", "skipped")."""
    worker = ctx.name if thread_name is None else f"{ctx.name}/{thread_name}"
    lease_s = ctx.settings.grading_lease_s
    fair = ctx.settings.fair_share()
    held = claims.claim_next(ctx.session_factory, worker=worker, lease_s=lease_s, fair=fair, prefer=attempt_id)
    if held is None:
        announce_later(ctx, attempt_id, fair)
        return "skipped"
    return grade_held(ctx, held)


def grade_held(ctx: WorkerContext, held: claims.Claim) -> str:
    """Grade a claimed attempt, store the result under the claim and send what comes next; returns what happened."""
    fair = ctx.settings.fair_share()
    loaded = current_problem(ctx, held.problem_id)
    ctx.beside.started(held.attempt_id)
    try:
        with claims.Keeper(ctx.session_factory, held, lease_s=ctx.settings.grading_lease_s,
                           max_hold_s=max_hold_s(ctx.grader, loaded)):
            report = grade_claimed(ctx.grader, loaded, held, where="grading worker")
    finally:
        ctx.beside.ended(held.attempt_id)
    outcome = claims.finish(ctx.session_factory, held, report,
                            problem_hash=loaded.content_hash if loaded is not None else None,
                            retries=ctx.settings.grading_retries, retryable=loaded is not None,
                            cost_s=charged_s(report))
    if outcome is claims.Finish.RETRY:
        ctx.dispatcher.submit(held.attempt_id, countdown=retry_delay_s(report, held.tries))
    else:
        if outcome is claims.Finish.DONE:
            ctx.dispatcher.publish_done(held.attempt_id)  # wakes the long polls waiting for it, in any server
        ctx.dispatcher.hand_off(held.user_id, fair)
    log.info("attempt %d: %s (%s, try %d)", held.attempt_id, outcome.value, report.verdict.value, held.tries,
             extra={"attempt_id": held.attempt_id, "verdict": report.verdict.value, "outcome": outcome.value})
    return outcome.value


def grade_beside_idle_runs(ctx: WorkerContext, index: int) -> None:
    """A thread that grades the attempt due next while every task slot of this worker grades a run that sleeps
    (app/grading/beside.py): with `--pool solo` a sleeping submission held the worker until its wall-clock backstop."""
    worker = f"{ctx.name}/beside-{index}"

    def claim() -> claims.Claim | None:
        held = claims.claim_next(ctx.session_factory, worker=worker, lease_s=ctx.settings.grading_lease_s,
                                 fair=ctx.settings.fair_share())
        if held is not None:
            ctx.beside_held[held.attempt_id] = held
        return held

    def grade(held: claims.Claim) -> None:
        try:
            grade_held(ctx, held)
        finally:
            ctx.beside_held.pop(held.attempt_id, None)

    ctx.beside.run(ctx.stop, claim, grade)


def announce_later(ctx: WorkerContext, attempt_id: int, fair: claims.FairShare) -> None:
    """Nothing may start for this attempt's message. When its author has an attempt running, that one's grader
    sends a message for this one as it ends (`QueueDispatcher.hand_off`); when only the author's grading
    budget holds it, nobody else would until the sweeper (minutes), so send it again for when the budget lets
    it start."""
    delay = claims.start_delay_s(ctx.session_factory, attempt_id, fair)
    if delay is None:
        log.info("nothing may start for attempt %d's message (graded, held elsewhere, or its author has one "
                 "running, whose end hands it off); message dropped", attempt_id)
        return
    if delay <= 0:  # it may start now: another grader took what it could, or took it a moment ago
        delay = CLAIM_AGAIN_S
        log.info("attempt %d could not be claimed just now; sent again for %.1f s from now", attempt_id, delay)
    else:
        log.info("attempt %d waits: its author is over its grading budget; sent again for %.1f s from now",
                 attempt_id, delay)
    ctx.dispatcher.submit(attempt_id, countdown=delay + 0.05)


def current_problem(ctx: WorkerContext, problem_id: str) -> LoadedProblem | None:
    """The problem in the version the server last loaded. An instructor's reload or upload updates the problem
    table; a worker started before that re-reads its (shared) problems directory instead of grading with stale
    tests or calling a new problem unavailable."""
    loaded = ctx.grader.bank.get(problem_id)
    with ctx.session_factory() as session:
        wanted = session.scalar(select(Problem.content_hash).where(Problem.id == problem_id))
    if wanted is None or (loaded is not None and loaded.content_hash == wanted):
        return loaded
    with ctx.reload_lock:
        loaded = ctx.grader.bank.get(problem_id)
        stale = loaded is None or loaded.content_hash != wanted
        if stale and time.monotonic() - ctx.last_reload >= RELOAD_MIN_INTERVAL_S:
            ctx.grader.bank.reload()
            ctx.last_reload = time.monotonic()
            loaded = ctx.grader.bank.get(problem_id)
            if loaded is None or loaded.content_hash != wanted:
                log.warning("problem %s on this worker differs from the server's: is the problems directory "
                            "shared?", problem_id)
    return loaded


def run_worker(settings: Settings, *, concurrency: int, pool: str, name: str, sweep: bool,
               metrics_port: int | None, metrics_host: str = "127.0.0.1") -> int:
    """Run a Celery worker in this process until it is stopped (SIGTERM finishes the current attempt)."""
    ctx = build_context(settings, name=name, sweep=sweep, concurrency=concurrency)
    celery = make_celery(settings)

    @celery.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def grade_attempt(attempt_id: int) -> str:
        return grade_one(ctx, int(attempt_id), thread_name=threading.current_thread().name
                         if pool == "threads" else None)

    if metrics_port is not None:
        from prometheus_client import start_http_server

        from app.observability import register_pool_metrics

        register_pool_metrics(ctx.grader.executor)
        start_http_server(metrics_port, addr=metrics_host)
        log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    ctx.dispatcher.start()
    ctx.grader.executor.start()  # the warm pool: its zygote starts now
    # Spare warm children of the problems already prepared in this worker's data dir (the image's `gradax
    # prepare`, an earlier run), as the server keeps them: any problem's first submission here takes a ready
    # child instead of waiting for a fork and warm-up. The server prepares the bank; a worker does not.
    grader = ctx.grader
    BankPreparation(grader.bank, Preparer(settings), background=False, warm=settings.pool == "warm",
                    on_prepared=lambda loaded: grader.executor.stock(loaded, grader.limits_for(loaded))).start()
    for i in range(concurrency):
        threading.Thread(target=grade_beside_idle_runs, args=(ctx, i), name=f"gradax-worker-beside-{i}",
                         daemon=True).start()
    log.info("worker %s: %s pool, concurrency %d, broker %s", name, pool, concurrency,
             _redact(settings.redis_url))
    worker = celery.Worker(hostname=f"gradax@{name.replace('/', '-')}", pool_cls=pool, concurrency=concurrency,
                           without_gossip=True, without_mingle=True, optimization="fair",
                           loglevel=settings.log_level)
    try:
        worker.start()
    finally:
        ctx.close()
    return int(worker.exitcode or 0)


def _redact(url: str) -> str:
    """The broker URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
