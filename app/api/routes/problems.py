"""Problems: list, read, reveal hints, save a draft, the reference solution once solved, reload the bank."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import (
    BankDep,
    CourseBankDep,
    CurrentUser,
    GraderDep,
    OptionalUser,
    PreparationDep,
    SessionDep,
    SettingsDep,
    StaffUser,
)
from app.errors import AppError
from app.schemas import (
    MAX_DB_INT,
    DraftUpdate,
    HintsPublic,
    Page,
    ProblemDetail,
    ProblemSummary,
    PublicExample,
)
from app.services.attempts import check_code
from app.services.examples import public_examples
from app.services.problems import (
    build_detail,
    build_summary,
    get_or_create_progress,
    get_progress,
    list_problems,
    loaded_problem,
    progress_by_problem,
    reveal_hint,
    run_counts,
    solution_for,
)
from app.services.reload import reload_from_disk

router = APIRouter(prefix="/problems", tags=["problems"])


@router.get("", response_model=Page[ProblemSummary])
def read_problems(session: SessionDep, bank: BankDep, user: OptionalUser, track: str | None = None,
                  offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
                  limit: Annotated[int, Query(ge=1, le=200)] = 100) -> Page[ProblemSummary]:
    """Problems ordered by track and position, with the caller's progress when logged in."""
    rows, count = list_problems(bank=bank, track=track, offset=offset, limit=limit)
    progress = progress_by_problem(session=session, user_id=user.id) if user else {}
    runs = run_counts(session=session, user_id=user.id) if user else {}
    data = [build_summary(r, progress.get(r.id), user is not None, runs.get(r.id, 0)) for r in rows]
    return Page(data=data, count=count, offset=offset, limit=limit)


@router.get("/{problem_id}", response_model=ProblemDetail)
def read_problem(problem_id: str, session: SessionDep, bank: BankDep, user: OptionalUser) -> ProblemDetail:
    """Statement, signature, starter code, public tests; the caller's draft, hints and (once solved) solution."""
    loaded = loaded_problem(bank, problem_id)
    progress = get_progress(session=session, user_id=user.id, problem_id=problem_id) if user else None
    runs = run_counts(session=session, user_id=user.id, problem_id=problem_id).get(problem_id, 0) if user else 0
    return build_detail(loaded, progress, user is not None, runs)


@router.get("/{problem_id}/examples", response_model=list[PublicExample])
async def read_examples(problem_id: str, bank: BankDep, grader: GraderDep) -> list[PublicExample]:
    """The public tests with concrete input values, a Python snippet that builds them, and the expected output
    (the first call after a problem changes runs the trusted reference: seconds). Hidden tests are never listed."""
    loaded = loaded_problem(bank, problem_id)
    examples = await run_in_threadpool(public_examples, loaded, grader)
    return [PublicExample.model_validate(e) for e in examples]


@router.post("/{problem_id}/hints", response_model=HintsPublic)
def reveal_next_hint(problem_id: str, session: SessionDep, bank: BankDep, user: CurrentUser) -> HintsPublic:
    """Reveal the next hint; hints come one at a time."""
    return reveal_hint(session=session, loaded=loaded_problem(bank, problem_id), user_id=user.id)


@router.put("/{problem_id}/draft", status_code=204)
def save_draft(problem_id: str, body: DraftUpdate, session: SessionDep, bank: BankDep, user: CurrentUser,
               settings: SettingsDep) -> Response:
    """Keep the editor's content so the problem page reopens where the student left off."""
    loaded = loaded_problem(bank, problem_id)
    check_code(body.code, settings.max_code_bytes)
    progress = get_or_create_progress(session=session, user_id=user.id, problem_id=loaded.id)
    progress.draft = body.code
    session.commit()
    return Response(status_code=204)


@router.get("/{problem_id}/solution", response_model=dict[str, str])
def read_solution(problem_id: str, session: SessionDep, bank: BankDep, user: CurrentUser) -> dict[str, str]:
    """The reference solution, for those who solved the problem (403 before)."""
    loaded = loaded_problem(bank, problem_id)
    solution = solution_for(loaded, get_progress(session=session, user_id=user.id, problem_id=problem_id))
    if solution is None:
        raise AppError(403, "solve the problem (an accepted Submit) to see the reference solution")
    return {"problem_id": problem_id, "solution": solution}


@router.post("/reload", response_model=dict[str, int], tags=["instructor"])
def reload_problems(session: SessionDep, bank: BankDep, course_bank: CourseBankDep, preparation: PreparationDep,
                    user: StaffUser) -> dict[str, int]:
    """Re-read problems/ (and courses/, whose assignments name problems) from disk and update the database
    (instructors); answers the problems' changes."""
    return reload_from_disk(session=session, problems=bank, courses=course_bank,
                            preparation=preparation).problem_changes
