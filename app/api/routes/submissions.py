"""Submissions: post code for grading (202), poll one, list the caller's own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.api.deps import (
    CompletionsDep,
    CurrentUser,
    DispatcherDep,
    GradingSlotsDep,
    PreparationDep,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
)
from app.models import Attempt, AttemptStatus
from app.schemas import (
    MAX_DB_INT,
    MAX_ID,
    Page,
    SubmissionCreate,
    SubmissionCreated,
    SubmissionDetail,
    SubmissionSummary,
)
from app.services.attempts import create_attempt, get_visible_attempt, list_attempts
from app.services.problems import render_inline
from app.services.waiting import waiting_for

router = APIRouter(prefix="/submissions", tags=["submissions"])
MAX_WAIT_S = 30.0


@router.post("", status_code=202, response_model=SubmissionCreated)
def create_submission(body: SubmissionCreate, session: SessionDep, settings: SettingsDep,
                      dispatcher: DispatcherDep, preparation: PreparationDep, user: CurrentUser) -> SubmissionCreated:
    """Queue code for grading; poll GET /submissions/{id} for the result."""
    attempt = create_attempt(session=session, user=user, problem_id=body.problem_id, code=body.code,
                             mode=body.mode, max_code_bytes=settings.max_code_bytes,
                             per_minute=settings.submit_rate, max_backlog=settings.max_backlog)
    preparation.urgent(body.problem_id)  # a student waits for it: its preparation (if any is left) goes first
    # Committed as queued above, so a failure to enqueue here loses nothing: the sweep finds it.
    dispatcher.submit(attempt.id)
    return SubmissionCreated(id=attempt.id, status=attempt.status)


@router.get("", response_model=Page[SubmissionSummary])
def read_submissions(session: SessionDep, user: CurrentUser, problem_id: str | None = None,
                     offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[SubmissionSummary]:
    """The caller's own attempts, newest first."""
    rows, count = list_attempts(session=session, user=user, problem_id=problem_id, offset=offset, limit=limit)
    return Page(data=[SubmissionSummary.model_validate(r) for r in rows], count=count, offset=offset, limit=limit)


def with_rendered_diagnosis(detail: SubmissionDetail) -> SubmissionDetail:
    """Diagnoses are Markdown (`kernel`, *not*): the page shows them rendered and sanitised, like hints."""
    diagnosis = (detail.report or {}).get("diagnosis")
    if isinstance(diagnosis, str) and diagnosis:
        detail.diagnosis_html = render_inline(diagnosis)
    return detail


@router.get("/{submission_id}", response_model=SubmissionDetail)
async def read_submission(submission_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                          factory: SessionFactoryDep, completions: CompletionsDep, settings: SettingsDep,
                          slots: GradingSlotsDep, preparation: PreparationDep, user: CurrentUser,
                          wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0) -> SubmissionDetail:
    """One attempt with its report once graded. Someone else's attempt is 404. While it waits: its `phase`
    (queued, preparing: its problem's first use, running), its place in the queue and an estimate.

    `wait=S` (long poll, at most 30 s): answer as soon as the attempt is done, or after S seconds with its
    current state, so a client learns the verdict the moment it is stored without polling in a tight loop.
    A user may have a few long polls waiting at once (GRADAX_LONG_POLLS_PER_USER); past that, 429.
    """
    user_id, is_staff = user.id, user.is_staff
    # The request's own session has served authentication, which gave its connection back (app/api/deps.py); a long
    # poll must not hold one (a PostgreSQL pool has a handful) while it waits, so every read below uses a short
    # session of its own.

    def read(answer: bool = True) -> SubmissionDetail:
        """The attempt now; `answer`: it is what the caller gets (with its phase, place and estimate), not only
        a look whether the long poll may answer at once."""
        with factory() as own:
            attempt = get_visible_attempt(session=own, user_id=user_id, is_staff=is_staff, attempt_id=submission_id)
            detail = with_rendered_diagnosis(SubmissionDetail.model_validate(attempt))
            if not answer and detail.status != AttemptStatus.DONE.value:
                return detail
            now = waiting_for(own, attempt, slots=slots, preparing=preparation.waits_for(attempt.problem_id))
        detail.phase, detail.queue_position, detail.estimate_s = now.phase, now.queue_position, now.estimate_s  # type: ignore[assignment]
        return detail

    if wait <= 0:
        return await run_in_threadpool(read)

    def done() -> bool:
        with factory() as own:
            return own.scalar(select(Attempt.status).where(Attempt.id == submission_id)) == AttemptStatus.DONE.value

    async def is_done() -> bool:
        return await run_in_threadpool(done)

    async with completions.watch(submission_id, user_id=user_id, is_done=is_done,
                                 recheck_s=settings.long_poll_recheck_s) as watch:
        detail = await run_in_threadpool(read, False)
        if detail.status == AttemptStatus.DONE.value:
            return detail
        await watch.wait(wait)
    return await run_in_threadpool(read)
