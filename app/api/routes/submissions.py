"""Submissions: post code for grading (202), poll one, list the caller's own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.schemas import MAX_DB_INT, Page, SubmissionCreate, SubmissionCreated, SubmissionDetail, SubmissionSummary
from app.services.attempts import create_attempt, get_attempt_for, list_attempts

router = APIRouter(prefix="/submissions", tags=["submissions"])


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
def read_submission(submission_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], session: SessionDep,
                    user: CurrentUser) -> SubmissionDetail:
    """One attempt with its report once graded. Someone else's attempt is 404."""
    attempt = get_attempt_for(session=session, user=user, attempt_id=submission_id)
    return SubmissionDetail.model_validate(attempt)
