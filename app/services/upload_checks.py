"""Upload checks run in the background and keep their files, progress and result in the database.

An instructor's upload with "run gradax check" ticked is validated at once (schema, reference, where it would be
written: milliseconds, errors shown on the spot); then its check (the trusted run of the reference and the known
mistakes, the reference graded in the sandbox: seconds to a minute) runs in a thread of the server that took it,
and the request answers at once with where to follow it. The job's row (`upload_checks`) holds both files, what
the check is doing (step k of n), and its result, so the page shows the same after a reload or from another server
process; a job whose runner stopped (a restart) reads as interrupted, with the files kept for the instructor to
send again. Only a check that passed writes the files to problems/, and the bank is reloaded then.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import UploadCheck, utcnow
from app.services.heartbeat import beating, expire_stale, interrupt_left_running, runner_name
from app.services.uploads import (
    PROBLEM_NAME,
    UploadError,
    UploadResult,
    check_upload,
    normalized,
    validate_upload,
    write_upload,
)
from graders.engine import Grader
from graders.settings import GraderSettings

log = logging.getLogger("gradax.upload")
# A running check's runner touches its row this often; a row untouched for STALE_S has no runner any more.
HEARTBEAT_S = 2.0
STALE_S = 30.0
# Ended checks (each holds both files) are kept this long, then removed at a server's start.
KEEP_DAYS = 30


@dataclass
class UploadCheckView:
    """An upload check as the API and the page show it."""

    id: int
    problem_id: str
    status: str  # running, done, failed (gradax broke, not the files), interrupted
    phase: str  # what it is doing, while running
    step: int
    steps: int
    duration_s: float
    error: str | None
    result: UploadResult | None  # once done: the check's errors and warnings, the files written if it passed
    yaml_text: str
    reference_text: str
    replace: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON view (without the files, which the instructor sent)."""
        result = None
        if self.result is not None:
            result = {"ok": self.result.ok, "checked": self.result.checked,
                      "errors": [asdict(e) for e in self.result.errors], "warnings": self.result.warnings,
                      "written": [p.name for p in self.result.written]}
        return {"id": self.id, "problem_id": self.problem_id, "status": self.status, "phase": self.phase,
                "step": self.step, "steps": self.steps, "duration_s": self.duration_s, "error": self.error,
                "result": result}


def _result_json(result: UploadResult) -> str:
    return json.dumps({"errors": [asdict(e) for e in result.errors], "warnings": result.warnings,
                       "written": [str(p) for p in result.written]})


def _result_from(job: UploadCheck) -> UploadResult | None:
    if job.result is None:
        return None
    data = json.loads(job.result)
    return UploadResult(problem_id=job.problem_id, errors=[UploadError(**e) for e in data["errors"]],
                        warnings=list(data["warnings"]), written=[Path(p) for p in data["written"]], checked=True)


class UploadChecks:
    """Starts upload checks in this process and reads any check from the database."""

    def __init__(self, factory: sessionmaker[Session], grader: Grader, settings: GraderSettings, problems_dir: Path,
                 *, on_saved: Callable[[], object]):
        self.factory, self.grader, self.settings, self.problems_dir = factory, grader, settings, problems_dir
        self.on_saved = on_saved  # reloads the bank (and prepares what changed) once a checked upload is written
        self.runner = runner_name()
        # One check at a time in this server: each runs the trusted reference runner and sandboxed gradings beside
        # the students' gradings, and several instructors uploading at once would take every core from them.
        self._one_at_a_time = threading.Lock()

    # -- reading -----------------------------------------------------------------------------------------

    def get(self, check_id: int) -> UploadCheckView | None:
        self._expire_stale()
        with self.factory() as session:
            job = session.get(UploadCheck, check_id)
            if job is None:
                return None
            duration = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
            return UploadCheckView(id=job.id, problem_id=job.problem_id, status=job.status, phase=job.phase,
                                   step=job.step, steps=job.steps, duration_s=round(duration, 1), error=job.error,
                                   result=_result_from(job), yaml_text=job.yaml_text,
                                   reference_text=job.reference_text, replace=job.replace_existing)

    def recent(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest checks, newest first, for the upload page's list (id, problem, status, when, passed)."""
        self._expire_stale()
        with self.factory() as session:
            rows = session.execute(select(UploadCheck.id, UploadCheck.problem_id, UploadCheck.status,
                                          UploadCheck.started_at, UploadCheck.result)
                                   .order_by(UploadCheck.id.desc()).limit(limit)).all()
        return [{"id": r.id, "problem_id": r.problem_id, "status": r.status, "started_at": r.started_at,
                 "ok": None if r.result is None else not json.loads(r.result)["errors"]} for r in rows]

    def _expire_stale(self) -> int:
        """Running checks whose runner stopped sending heartbeats (a restart, a crash) become interrupted."""
        with session_scope(self.factory) as session:
            return expire_stale(session, UploadCheck, stale_s=STALE_S,
                                error="the server running this check stopped; nothing was saved: send it again")

    def recover(self) -> None:
        """At start: checks this host's previous process left running are interrupted now (not in STALE_S), and
        checks that ended more than KEEP_DAYS ago are removed."""
        with session_scope(self.factory) as session:
            session.execute(delete(UploadCheck).where(UploadCheck.status != "running",
                                                      UploadCheck.finished_at < utcnow() - timedelta(days=KEEP_DAYS)))
            interrupt_left_running(session, UploadCheck, runner=self.runner,
                                   error="the server restarted during this check; nothing was saved: send it again")
        self._expire_stale()

    # -- running -----------------------------------------------------------------------------------------

    def start(self, yaml_text: str, reference_text: str, *, replace: bool,
              started_by: int | None = None) -> tuple[UploadResult, int | None]:
        """Validate the upload now; if it is valid, start its check in the background. Returns the validation's
        result and the check's id (None when validation failed: its errors are the answer)."""
        yaml_text, reference_text = normalized(yaml_text), normalized(reference_text)
        result = validate_upload(self.problems_dir, yaml_text, reference_text, replace=replace)
        if not result.ok or result.problem_id is None:
            return result, None
        self._expire_stale()
        try:
            with session_scope(self.factory) as session:
                job = UploadCheck(problem_id=result.problem_id, status="running", phase="starting", step=0,
                                  steps=0, replace_existing=replace, yaml_text=yaml_text, reference_text=reference_text,
                                  runner=self.runner, started_by=started_by)
                session.add(job)
                session.flush()
                check_id = job.id
        except IntegrityError:  # the partial unique index: one check of this id runs already
            result.errors.append(UploadError(PROBLEM_NAME, 1, f"id: a check of problem {result.problem_id!r} is "
                                             "running; wait for it to end, then send this again"))
            return result, None
        threading.Thread(target=self._run, args=(check_id, result, yaml_text, reference_text, replace),
                         name=f"gradax-upload-check-{check_id}", daemon=True).start()
        return result, check_id

    def _set(self, check_id: int, **values: Any) -> None:
        with session_scope(self.factory) as session:
            session.execute(update(UploadCheck).where(UploadCheck.id == check_id)
                            .values(heartbeat_at=utcnow(), **values))

    def _progress(self, check_id: int, what: str, step: int | None = None, steps: int | None = None) -> None:
        """What the check is doing, for its page: best effort (a database briefly locked must not fail the check)."""
        counts = {} if step is None else {"step": step, "steps": steps}
        try:
            self._set(check_id, phase=what[:200], **counts)
        except Exception:
            log.exception("upload check %d: progress not stored", check_id)

    def _run(self, check_id: int, result: UploadResult, yaml_text: str, reference_text: str, replace: bool) -> None:
        with beating(lambda: self._set(check_id), HEARTBEAT_S, f"gradax-upload-check-{check_id}"):
            if not self._one_at_a_time.acquire(blocking=False):
                self._progress(check_id, "waiting for another upload's check to end")
                self._one_at_a_time.acquire()
            try:
                self._check(check_id, result, yaml_text, reference_text, replace)
            finally:
                self._one_at_a_time.release()

    def _check(self, check_id: int, result: UploadResult, yaml_text: str, reference_text: str, replace: bool) -> None:
        try:
            check_upload(result, yaml_text, reference_text, self.settings, self.grader.executor,
                         on_stage=lambda what, step, steps: self._progress(check_id, what, step, steps))
            if result.ok:
                self._progress(check_id, "saving the files and loading the problem")
                write_upload(self.problems_dir, result, yaml_text, reference_text, replace=replace)
            if result.written:
                try:
                    self.on_saved()
                except Exception as exc:  # saved all the same: say so, and how to load it
                    log.exception("upload check %d: the bank could not be reloaded", check_id)
                    result.warnings.append(f"saved, but the problems could not be reloaded ({type(exc).__name__}:"
                                           f" {exc}); press Reload problems on the instructor page")
            self._set(check_id, status="done", result=_result_json(result), finished_at=utcnow())
            log.info("upload check %d of %s: %s", check_id, result.problem_id,
                     "saved" if result.written else f"{len(result.errors)} errors, nothing saved")
        except Exception as exc:
            log.exception("upload check %d of %s failed", check_id, result.problem_id)
            self._set(check_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:500],
                      finished_at=utcnow())
