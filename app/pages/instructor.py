"""Instructor pages: statistics and progress, the grade sheet, problem upload, reload and regrade buttons.

Anonymous visitors are sent to log in; students get 403 (`StaffPageUser`). Every form carries the session's
CSRF token.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import BankDep, CourseBankDep, PreparationDep, RegradesDep, SessionDep, UploadChecksDep
from app.errors import AppError, not_found
from app.models import User
from app.pages.deps import StaffPageUser, check_form_csrf
from app.pages.rendering import back, page
from app.responses import csv_download
from app.schemas import MAX_ID
from app.services.instructor import grades_csv, problem_stats, recorded_flips, student_progress
from app.services.problems import loaded_problem
from app.services.reload import reload_from_disk
from app.services.upload_checks import UploadCheckView
from app.services.uploads import UploadResult, upload_problem

router = APIRouter(prefix="/instructor", include_in_schema=False)
MAX_UPLOAD_BYTES = 512 * 1024


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, bank: BankDep, course_bank: CourseBankDep,
              user: StaffPageUser) -> HTMLResponse:
    errors = [e for err in bank.errors.values() for e in err.errors]
    errors += [e for course_err in course_bank.errors.values() for e in course_err.errors]
    return page(request, "instructor.html", {
        "user": user, "problems": problem_stats(session, bank), "students": student_progress(session),
        "errors": errors, "message": request.query_params.get("m"),
    })


@router.get("/grades.csv")
def grades(session: SessionDep, bank: BankDep, user: StaffPageUser) -> Response:
    return csv_download(grades_csv(session, bank), "grades.csv")


@router.post("/reload")
def reload(request: Request, session: SessionDep, bank: BankDep, course_bank: CourseBankDep, user: StaffPageUser,
           preparation: PreparationDep, csrf_token: Annotated[str, Form()] = "") -> RedirectResponse:
    check_form_csrf(request, csrf_token)
    stats = reload_from_disk(session=session, problems=bank, courses=course_bank, preparation=preparation)
    return back("/instructor", message=stats.summary())


@router.post("/problems/{problem_id}/regrade")
def regrade(problem_id: str, request: Request, bank: BankDep, regrades: RegradesDep, user: StaffPageUser,
            csrf_token: Annotated[str, Form()] = "") -> RedirectResponse:
    check_form_csrf(request, csrf_token)
    loaded_problem(bank, problem_id)
    regrades.start(problem_id, started_by=user.id)
    return RedirectResponse(f"/instructor/problems/{problem_id}/regrade", status_code=303)


@router.get("/problems/{problem_id}/regrade", response_class=HTMLResponse)
def regrade_status(problem_id: str, request: Request, session: SessionDep, regrades: RegradesDep,
                   user: StaffPageUser) -> HTMLResponse:
    """The running or latest regrade (from the database: a reload shows the same); with none, the flips
    recorded on the attempts."""
    job = regrades.get(problem_id)
    flipped = job.flipped if job is not None else recorded_flips(session, problem_id)
    return page(request, "instructor_regrade.html", {"user": user, "problem_id": problem_id, "job": job,
                                                     "flipped": flipped})


def _upload_page(request: Request, user: User, result: UploadResult | None, yaml_text: str = "",
                 reference_text: str = "", status_code: int = 200, check: UploadCheckView | None = None,
                 recent: list[dict[str, Any]] | None = None) -> HTMLResponse:
    return page(request, "instructor_upload.html", {
        "user": user, "result": result, "yaml_text": yaml_text, "reference_text": reference_text, "check": check,
        "recent": recent or [],
        "upload_errors": [asdict(e) for e in result.errors] if result else []}, status_code=status_code)


@router.get("/problems/upload", response_class=HTMLResponse)
def upload_form(request: Request, upload_checks: UploadChecksDep, user: StaffPageUser) -> HTMLResponse:
    return _upload_page(request, user, None, recent=upload_checks.recent())


async def _text(upload: UploadFile | None, fallback: str) -> str:
    if upload is None or not upload.filename:
        return fallback
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise AppError(413, f"{upload.filename} is over {MAX_UPLOAD_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AppError(400, f"{upload.filename} is not UTF-8 text") from exc


@router.post("/problems/upload", response_class=HTMLResponse)
async def upload_submit(request: Request, bank: BankDep, course_bank: CourseBankDep, upload_checks: UploadChecksDep,
                        user: StaffPageUser, session: SessionDep, preparation: PreparationDep,
                        csrf_token: Annotated[str, Form()] = "",
                        problem_yaml: Annotated[str, Form()] = "", reference: Annotated[str, Form()] = "",
                        problem_file: Annotated[UploadFile | None, File()] = None,
                        reference_file: Annotated[UploadFile | None, File()] = None,
                        replace: Annotated[bool, Form()] = False,
                        check: Annotated[bool, Form()] = False) -> Response:
    check_form_csrf(request, csrf_token)
    yaml_text = await _text(problem_file, problem_yaml)
    reference_text = await _text(reference_file, reference)
    if check:
        # Validated now; its `gradax check` (seconds to a minute) runs in the background, followed on a page of
        # its own that survives a reload.
        result, check_id = await run_in_threadpool(lambda: upload_checks.start(
            yaml_text, reference_text, replace=replace, started_by=user.id))
        if check_id is not None:
            return RedirectResponse(f"/instructor/problems/upload/checks/{check_id}", status_code=303)
        return _upload_page(request, user, result, yaml_text, reference_text, status_code=422)
    # Validation is quick, but reads and writes files: off the event loop.
    result = await run_in_threadpool(upload_problem, bank.directory, yaml_text, reference_text, replace=replace)
    if result.ok:
        await run_in_threadpool(lambda: reload_from_disk(session=session, problems=bank, courses=course_bank,
                                                          preparation=preparation))
    return _upload_page(request, user, result, yaml_text, reference_text, status_code=200 if result.ok else 422)


@router.get("/problems/upload/checks/{check_id}", response_class=HTMLResponse)
def upload_check_page(check_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, upload_checks: UploadChecksDep,
                      user: StaffPageUser) -> HTMLResponse:
    """An upload's check: what it is doing while it runs (the page refreshes itself), then its result as the upload
    page shows it, with both files in the editors (to fix and send again, or as saved)."""
    view = upload_checks.get(check_id)
    if view is None:
        raise not_found(f"upload check {check_id}")
    return _upload_page(request, user, view.result, view.yaml_text, view.reference_text, check=view)
