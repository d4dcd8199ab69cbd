"""Instructor pages: statistics and progress, the grade sheet, problem upload, reload and regrade buttons.

Anonymous visitors are sent to log in; students get 403. Every form carries the session's CSRF token.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import URL

from app.api.deps import BankDep, CourseBankDep, SessionDep, SettingsDep, cookie_user
from app.models import User
from app.pages.routes import check_form_csrf, page
from app.services.courses import sync_courses
from app.services.instructor import grades_csv, problem_stats, recorded_flips, student_progress
from app.services.problems import sync_problems
from app.services.regrades import RegradeJob
from app.services.uploads import UploadResult, upload_problem

router = APIRouter(prefix="/instructor", include_in_schema=False)
MAX_UPLOAD_BYTES = 512 * 1024


def form_user(request: Request, session: SessionDep) -> User | None:
    """The logged-in user from the session cookie. Unlike the API's dependency this does not ask for the
    X-CSRF-Token header: these are HTML forms, whose CSRF token is checked by `check_form_csrf`."""
    return cookie_user(request, session)


PageUser = Annotated[User | None, Depends(form_user)]


def staff(request: Request, user: User | None) -> User | Response:
    if user is None:
        return RedirectResponse(str(URL("/login").include_query_params(next=request.url.path)), status_code=303)
    if not user.is_staff:
        raise HTTPException(403, "This page is for instructors.")
    return user


@router.get("", response_class=HTMLResponse, response_model=None)
def dashboard(request: Request, session: SessionDep, bank: BankDep, course_bank: CourseBankDep,
              user: PageUser) -> Response:
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    errors = [e for err in bank.errors.values() for e in err.errors]
    errors += [e for course_err in course_bank.errors.values() for e in course_err.errors]
    return page(request, "instructor.html", {
        "user": who, "problems": problem_stats(session), "students": student_progress(session),
        "errors": errors, "message": request.query_params.get("m"),
    })


@router.get("/grades.csv", response_model=None)
def grades(request: Request, session: SessionDep, user: PageUser) -> Response:
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    return Response(grades_csv(session), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="grades.csv"'})


@router.post("/reload", response_model=None)
def reload(request: Request, session: SessionDep, bank: BankDep, course_bank: CourseBankDep, user: PageUser,
           csrf_token: Annotated[str, Form()] = "") -> Response:
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    check_form_csrf(request, csrf_token)
    bank.reload()
    stats = sync_problems(session=session, bank=bank)
    course_bank.reload(problem_ids=set(bank.problems))
    course_stats = sync_courses(session=session, bank=course_bank)
    summary = (f"Reloaded: {len(bank.problems)} problems ({stats['added']} new, {stats['updated']} changed, "
               f"{stats['unavailable']} gone), {stats['errors']} files with errors; {course_stats['courses']} courses "
               f"with {course_stats['assignments']} assignments ({course_stats['changed']} changed), "
               f"{course_stats['errors']} course files with errors.")
    return RedirectResponse(str(URL("/instructor").include_query_params(m=summary)), status_code=303)


@router.post("/problems/{problem_id}/regrade", response_model=None)
def regrade(problem_id: str, request: Request, bank: BankDep, user: PageUser,
            csrf_token: Annotated[str, Form()] = "") -> Response:
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    check_form_csrf(request, csrf_token)
    if bank.get(problem_id) is None:
        raise HTTPException(404, f"There is no problem {problem_id!r}.")
    request.app.state.regrades.start(problem_id)
    return RedirectResponse(f"/instructor/problems/{problem_id}/regrade", status_code=303)


@router.get("/problems/{problem_id}/regrade", response_class=HTMLResponse, response_model=None)
def regrade_status(problem_id: str, request: Request, session: SessionDep, user: PageUser) -> Response:
    """The running or latest regrade; after a restart, the flips recorded on the attempts."""
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    job: RegradeJob | None = request.app.state.regrades.get(problem_id)
    flipped = job.flipped if job is not None else recorded_flips(session, problem_id)
    return page(request, "instructor_regrade.html", {"user": who, "problem_id": problem_id, "job": job,
                                                     "flipped": flipped})


def _upload_page(request: Request, user: User, result: UploadResult | None, yaml_text: str = "",
                 reference_text: str = "", status_code: int = 200) -> HTMLResponse:
    return page(request, "instructor_upload.html", {
        "user": user, "result": result, "yaml_text": yaml_text, "reference_text": reference_text,
        "upload_errors": [asdict(e) for e in result.errors] if result else []}, status_code=status_code)


@router.get("/problems/upload", response_class=HTMLResponse, response_model=None)
def upload_form(request: Request, user: PageUser) -> Response:
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    return _upload_page(request, who, None)


async def _text(upload: UploadFile | None, fallback: str) -> str:
    if upload is None or not upload.filename:
        return fallback
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"{upload.filename} is over {MAX_UPLOAD_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"{upload.filename} is not UTF-8 text") from exc


@router.post("/problems/upload", response_class=HTMLResponse, response_model=None)
async def upload_submit(request: Request, bank: BankDep, settings: SettingsDep, user: PageUser,
                        session: SessionDep,
                        csrf_token: Annotated[str, Form()] = "",
                        problem_yaml: Annotated[str, Form()] = "", reference: Annotated[str, Form()] = "",
                        problem_file: Annotated[UploadFile | None, File()] = None,
                        reference_file: Annotated[UploadFile | None, File()] = None,
                        replace: Annotated[bool, Form()] = False, check: Annotated[bool, Form()] = False) -> Response:
    who = staff(request, user)
    if isinstance(who, Response):
        return who
    check_form_csrf(request, csrf_token)
    yaml_text = await _text(problem_file, problem_yaml)
    reference_text = await _text(reference_file, reference)
    # Validation is quick; `gradax check` takes seconds of child processes: off the event loop either way.
    result = await run_in_threadpool(upload_problem, bank.directory, yaml_text, reference_text, replace=replace,
                                     check=settings if check else None)
    if result.ok:
        await run_in_threadpool(bank.reload)
        await run_in_threadpool(lambda: sync_problems(session=session, bank=bank))
    return _upload_page(request, who, result, yaml_text, reference_text, status_code=200 if result.ok else 422)
