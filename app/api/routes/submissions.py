"""Submissions: post code for grading (202), poll one, list the caller's own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.grading.completions import Completions
from app.models import AttemptStatus
from app.schemas import MAX_DB_INT, Page, SubmissionCreate, SubmissionCreated, SubmissionDetail, SubmissionSummary
from app.services.attempts import create_attempt, get_visible_attempt, list_attempts

router = APIRouter(prefix="/submissions", tags=["submissions"])
MAX_WAIT_S = 30.0


@router.post("", status_code=202, response_model=SubmissionCreated)
def create_submission(body: SubmissionCreate, request: Request, session: SessionDep, settings: SettingsDep,
                      user: CurrentUser) -> SubmissionCreated:
    """Queue code for grading; poll GET /submissions/{id} for the result."""
    attempt = create_attempt(session=session, user=user, problem_id=body.problem_id, code=body.code,
                             mode=body.mode, max_code_bytes=settings.max_code_bytes,
                             per_minute=settings.submit_rate, max_backlog=settings.max_backlog)
    # Committed as queued above, so a failure to enqueue here loses nothing: the sweep finds it.
    request.app.state.dispatcher.submit(attempt.id)
    return SubmissionCreated(id=attempt.id, status=attempt.status)


@router.get("", response_model=Page[SubmissionSummary])
def read_submissions(session: SessionDep, user: CurrentUser, problem_id: str | None = None,
                     offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[SubmissionSummary]:
    """The caller's own attempts, newest first."""
    rows, count = list_attempts(session=session, user=user, problem_id=problem_id, offset=offset, limit=limit)
    return Page(data=[SubmissionSummary.model_validate(r) for r in rows], count=count, offset=offset, limit=limit)


@router.get("/{submission_id}", response_model=SubmissionDetail)
async def read_submission(submission_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], request: Request,
                          session: SessionDep, user: CurrentUser,
                          wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0) -> SubmissionDetail:
    """One attempt with its report once graded. Someone else's attempt is 404.

    `wait=S` (long poll, at most 30 s): answer as soon as the attempt is done, or after S seconds with its
    current state, so a client learns the verdict the moment it is stored without polling in a tight loop.
    """
    user_id, is_staff = user.id, user.is_staff
    # The request's own session has served authentication; a long poll must not hold its connection
    # (a PostgreSQL pool has a handful) while it waits, so every read below uses a short session of its own.
    await run_in_threadpool(session.close)
    factory = request.app.state.session_factory
    completions: Completions = request.app.state.completions
    recheck_s = request.app.state.settings.long_poll_recheck_s

    def read() -> SubmissionDetail:
        with factory() as own:
            attempt = get_visible_attempt(session=own, user_id=user_id, is_staff=is_staff, attempt_id=submission_id)
            return SubmissionDetail.model_validate(attempt)

    deadline = time.monotonic() + wait
    while True:
        waiter = completions.register(submission_id)
        try:
            detail = await run_in_threadpool(read)
            remaining = deadline - time.monotonic()
            if detail.status == AttemptStatus.DONE.value or remaining <= 0:
                return detail
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter[1].wait(), min(remaining, recheck_s))
        finally:
            completions.unregister(submission_id, waiter)
