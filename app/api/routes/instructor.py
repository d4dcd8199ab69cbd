"""Instructor API: statistics, the grade sheet, problem upload and regrading (instructors and admins only)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import BankDep, SessionDep, SettingsDep, StaffUser
from app.errors import not_found
from app.services.instructor import grades_csv, problem_stats, student_progress
from app.services.problems import sync_problems
from app.services.regrades import RegradeJob
from app.services.uploads import upload_problem

router = APIRouter(prefix="/instructor", tags=["instructor"])


class ProblemUpload(BaseModel):
    yaml: str
    reference: str
    replace: bool = False
    # Run `gradax check` (reference accepted, known mistakes rejected) before writing; takes seconds.
    check: bool = False


@router.get("/stats")
def read_stats(session: SessionDep, user: StaffUser) -> dict[str, Any]:
    """Per problem: attempts, students, solve rate, median attempts to first accept, top failures and diagnoses;
    per student: problems solved and Submit count."""
    return {"problems": [asdict(s) for s in problem_stats(session)],
            "students": [asdict(s) for s in student_progress(session)]}


@router.get("/grades.csv")
def read_grades_csv(session: SessionDep, user: StaffUser) -> Response:
    """One row per student: 1/0 per problem (solved), then the number solved."""
    return Response(grades_csv(session), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="grades.csv"'})


@router.post("/problems", status_code=201)
def create_problem(body: ProblemUpload, session: SessionDep, bank: BankDep, settings: SettingsDep,
                   user: StaffUser) -> Response:
    """Upload a problem YAML and its reference solution; 422 with located errors, else written and loaded."""
    result = upload_problem(bank.directory, body.yaml, body.reference, replace=body.replace,
                            check=settings if body.check else None)
    payload: dict[str, Any] = {"problem_id": result.problem_id, "checked": result.checked,
                               "errors": [asdict(e) for e in result.errors], "warnings": result.warnings}
    if not result.ok:
        return JSONResponse(payload, status_code=422)
    bank.reload()
    payload["sync"] = sync_problems(session=session, bank=bank)
    return JSONResponse(payload, status_code=201)


@router.post("/problems/{problem_id}/regrade", status_code=202)
def start_regrade(problem_id: str, request: Request, bank: BankDep, user: StaffUser) -> dict[str, Any]:
    """Start grading every Submit attempt of the problem again with its current version, in the background
    (seconds per attempt); poll GET for progress and the attempts whose verdict flipped. A regrade already
    running for the problem is returned instead of a second one."""
    if bank.get(problem_id) is None:
        raise not_found(f"problem {problem_id!r}")
    job: RegradeJob = request.app.state.regrades.start(problem_id)
    return job.to_dict()


@router.get("/problems/{problem_id}/regrade")
def read_regrade(problem_id: str, request: Request, user: StaffUser) -> dict[str, Any]:
    """The latest regrade of the problem in this server process: status, progress, flipped verdicts."""
    job: RegradeJob | None = request.app.state.regrades.get(problem_id)
    if job is None:
        raise not_found(f"regrade of {problem_id!r}")
    return job.to_dict()
