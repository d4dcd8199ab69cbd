"""Instructor API: statistics, the grade sheet, problem upload and regrading (instructors and admins only)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import (
    BankDep,
    CourseBankDep,
    GraderDep,
    PreparationDep,
    RegradesDep,
    SessionDep,
    SettingsDep,
    StaffUser,
    UploadChecksDep,
)
from app.errors import not_found
from app.responses import csv_download
from app.schemas import MAX_ID
from app.services.instructor import grades_csv, problem_stats, student_progress
from app.services.problems import loaded_problem
from app.services.reload import reload_from_disk
from app.services.uploads import UploadResult, upload_problem

router = APIRouter(prefix="/instructor", tags=["instructor"])


class ProblemUpload(BaseModel):
    yaml: str
    reference: str
    replace: bool = False
    # Run `gradax check` (reference accepted, known mistakes rejected) before writing; takes seconds.
    check: bool = False


@router.get("/stats")
def read_stats(session: SessionDep, bank: BankDep, user: StaffUser) -> dict[str, Any]:
    """Per problem: attempts, students, solve rate, median attempts to first accept, top failures and diagnoses;
    per student: problems solved and Submit count."""
    return {"problems": [asdict(s) for s in problem_stats(session, bank)],
            "students": [asdict(s) for s in student_progress(session)]}


@router.get("/grades.csv")
def read_grades_csv(session: SessionDep, bank: BankDep, user: StaffUser) -> Response:
    """One row per student: 1/0 per problem (solved), then the number solved."""
    return csv_download(grades_csv(session, bank), "grades.csv")


@router.post("/problems", status_code=201)
def create_problem(body: ProblemUpload, session: SessionDep, bank: BankDep, course_bank: CourseBankDep,
                   settings: SettingsDep, preparation: PreparationDep, grader: GraderDep,
                   user: StaffUser) -> Response:
    """Upload a problem YAML and its reference solution; 422 with located errors, else written and loaded."""
    result = upload_problem(bank.directory, body.yaml, body.reference, replace=body.replace,
                            check=settings if body.check else None, executor=grader.executor)
    payload = upload_payload(result)
    if not result.ok:
        return JSONResponse(payload, status_code=422)
    payload["sync"] = reload_from_disk(session=session, problems=bank, courses=course_bank,
                                       preparation=preparation).problem_changes
    return JSONResponse(payload, status_code=201)


def upload_payload(result: UploadResult) -> dict[str, Any]:
    """An upload's answer: its problem id, whether it was checked, its located errors and its warnings."""
    return {"problem_id": result.problem_id, "checked": result.checked,
            "errors": [asdict(e) for e in result.errors], "warnings": result.warnings}


class ProblemCheckUpload(BaseModel):
    yaml: str
    reference: str
    replace: bool = False


@router.post("/problem-checks", status_code=202)
def start_problem_check(body: ProblemCheckUpload, upload_checks: UploadChecksDep, user: StaffUser) -> Response:
    """Upload a problem YAML and its reference solution to be checked in the background: validated now (422 with
    located errors, nothing kept), then `gradax check` runs (seconds to a minute) and, if it passes, both files are
    written and loaded. 202 with the check's id; poll GET /instructor/problem-checks/{id} for its progress and
    result. POST /instructor/problems with `check` does the same in one request that waits for it."""
    result, check_id = upload_checks.start(body.yaml, body.reference, replace=body.replace, started_by=user.id)
    if check_id is None:  # the files did not validate: nothing was checked
        return JSONResponse(upload_payload(result), status_code=422)
    view = upload_checks.get(check_id)
    assert view is not None
    return JSONResponse(view.to_dict(), status_code=202,
                        headers={"Location": f"/api/v1/instructor/problem-checks/{check_id}"})


@router.get("/problem-checks/{check_id}")
def read_problem_check(check_id: Annotated[int, Path(ge=1, le=MAX_ID)], upload_checks: UploadChecksDep,
                       user: StaffUser) -> dict[str, Any]:
    """An upload check: `status` running (with `phase`, `step` of `steps`), done (`result`: `ok`, `errors` located
    by file and line, `warnings`, the files `written`), failed or interrupted (`error`; nothing was written)."""
    view = upload_checks.get(check_id)
    if view is None:
        raise not_found(f"upload check {check_id}")
    return view.to_dict()


@router.post("/problems/{problem_id}/regrade", status_code=202)
def start_regrade(problem_id: str, bank: BankDep, regrades: RegradesDep, user: StaffUser) -> dict[str, Any]:
    """Start grading every Submit attempt of the problem again with its current version, in the background
    (seconds per attempt); poll GET for progress and the attempts whose verdict flipped. A regrade already
    running for the problem is returned instead of a second one."""
    loaded_problem(bank, problem_id)
    return regrades.start(problem_id, started_by=user.id).to_dict()


@router.get("/problems/{problem_id}/regrade")
def read_regrade(problem_id: str, regrades: RegradesDep, user: StaffUser) -> dict[str, Any]:
    """The latest regrade of the problem: status (running, done, failed, interrupted), phase (preparing,
    grading), done/total, an estimate of the time left (eta_s), and the attempts whose verdict flipped."""
    job = regrades.get(problem_id)
    if job is None:
        raise not_found(f"regrade of {problem_id!r}")
    return job.to_dict()
