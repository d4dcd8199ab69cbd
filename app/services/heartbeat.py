"""A background job's heartbeat: its row is touched every few seconds while it runs, so a reader anywhere can tell
a running job from one whose runner stopped (regrades, upload checks: tables with `status`, `runner`,
`heartbeat_at`, `finished_at` and `error`)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from app.models import RegradeJob, UploadCheck, utcnow

log = logging.getLogger("gradax.jobs")
JobTable = type[RegradeJob] | type[UploadCheck]


def runner_name() -> str:
    """This process, as a job's `runner`: its host, so a restart there can tell its own leftovers."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def expire_stale(session: Session, table: JobTable, *, stale_s: float, error: str,
                 where: ColumnElement[bool] | None = None) -> int:
    """Running jobs (those matching `where`) whose runner stopped sending heartbeats (a restart, a crash, anywhere)
    become interrupted, ended at their last heartbeat. Returns how many."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    statement = (update(table).where(table.status == "running", table.heartbeat_at < cutoff)
                 .values(status="interrupted", finished_at=table.heartbeat_at, error=error))
    if where is not None:
        statement = statement.where(where)
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def interrupt_left_running(session: Session, table: JobTable, *, runner: str, error: str) -> None:
    """At a process's start: jobs an earlier process on this host left running are interrupted now, without waiting
    for their heartbeat to go stale."""
    session.execute(update(table)
                    .where(table.status == "running", table.runner.like(f"{socket.gethostname()}:%"),
                           table.runner != runner)
                    .values(status="interrupted", finished_at=utcnow(), error=error))


@contextmanager
def beating(touch: Callable[[], None], interval_s: float, name: str) -> Iterator[None]:
    """Call `touch` every `interval_s` seconds in a thread of its own until the block ends. A failed touch is
    logged and tried again at the next beat (a database briefly locked must not end the job)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_s):
            try:
                touch()
            except Exception:
                log.exception("%s: heartbeat failed", name)

    thread = threading.Thread(target=beat, name=f"{name}-beat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
