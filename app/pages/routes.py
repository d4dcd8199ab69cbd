"""Server-rendered pages: problem list, problem page, log in, register, log out.

Forms carry a CSRF token from the session (synchronizer pattern); the problem page's script sends the
same token in the X-CSRF-Token header with its JSON calls.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.deps import AuthGuardDep, BankDep, OptionalUser, SessionDep, client_address
from app.errors import AppError
from app.models import Course
from app.pages.deps import check_form_csrf, csrf_token, start_session
from app.pages.rendering import page
from app.schemas import UserCreate
from app.services.courses import invitation_by_token
from app.services.examples import public_inputs
from app.services.gradebook import problem_standings
from app.services.problems import (
    build_detail,
    build_summary,
    get_progress,
    list_problems,
    loaded_problem,
    progress_by_problem,
    run_counts,
    track_title,
)
from app.services.sessions import close_session
from app.services.users import INVITATION_GONE, authenticate, check_registration, create_user

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker-supplied `next` must not send people elsewhere after log in."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/", response_class=HTMLResponse)
def problem_list_page(request: Request, session: SessionDep, bank: BankDep, user: OptionalUser) -> HTMLResponse:
    rows, _count = list_problems(bank=bank)
    progress = progress_by_problem(session=session, user_id=user.id) if user else {}
    runs = run_counts(session=session, user_id=user.id) if user else {}
    summaries = [build_summary(r, progress.get(r.id), user is not None, runs.get(r.id, 0)) for r in rows]
    tracks = [(track, track_title(track), list(items)) for track, items in groupby(summaries, key=lambda s: s.track)]
    solved = sum(1 for s in summaries if s.progress and s.progress.solved)
    return page(request, "index.html", {"user": user, "tracks": tracks, "solved": solved, "total": len(summaries)})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    # Browsers ask for /favicon.ico on every page whatever the <link> says: answer instead of a 404.
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/problems/{problem_id}", response_class=HTMLResponse)
def problem_page(problem_id: str, request: Request, session: SessionDep, bank: BankDep,
                 user: OptionalUser) -> HTMLResponse:
    loaded = loaded_problem(bank, problem_id)
    progress = get_progress(session=session, user_id=user.id, problem_id=problem_id) if user else None
    runs = run_counts(session=session, user_id=user.id, problem_id=problem_id).get(problem_id, 0) if user else 0
    detail = build_detail(loaded, progress, user is not None, runs)
    config = {
        "problemId": detail.id, "loggedIn": user is not None, "csrf": csrf_token(request),
        "username": user.username if user else None,
        "starter": detail.starter_code, "draft": detail.draft, "hints": detail.hints_html,
        "hintsTotal": detail.hints_total, "solved": bool(progress and progress.solved),
        "solution": detail.solution, "loginUrl": "/login?next=" + quote(request.url.path, safe="/"),
    }
    # The assignments (of the viewer's courses) that hold this problem, with due dates and standing.
    assignments = problem_standings(session, user, problem_id) if user else []
    # Inputs and snippets are cheap; expected outputs may need a reference run, so the page fetches them.
    return page(request, "problem.html", {"user": user, "p": detail, "config": config, "assignments": assignments,
                                          "problem_id": problem_id, "examples": public_inputs(loaded)})


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "login.html", {"next": safe_next(next), "error": None, "username": ""})


@router.post("/login", response_model=None)
async def login_submit(request: Request, session: SessionDep, guard: AuthGuardDep,
                       username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=256)],
                       csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:
    check_form_csrf(request, csrf_token)
    try:
        guard.check(client=client_address(request), username=username)
        user = await guard.hashing(lambda: authenticate(session=session, username=username, password=password))
    except AppError as exc:
        return page(request, "login.html", {"next": safe_next(next), "error": exc.detail, "username": username},
                    status_code=exc.status_code)
    if user is None:
        return page(request, "login.html", {"next": safe_next(next), "error": "Wrong username or password.",
                                            "username": username}, status_code=401)
    await run_in_threadpool(start_session, request, session, user.id)
    return RedirectResponse(safe_next(next), status_code=303)


def _invitation_context(session: Session, token: str | None) -> dict[str, object]:
    """What the Register page says about the invitation link it was opened with."""
    if not token:
        return {"invite": ""}
    invitation = invitation_by_token(session, token)
    if invitation is None:
        return {"invite": "", "invite_error": INVITATION_GONE}
    course = session.get(Course, invitation.course_id)
    return {"invite": token, "invite_course": course.title if course is not None else invitation.course_id,
            "invite_email": invitation.email or "", "invite_username": invitation.username or ""}


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, session: SessionDep, next: str | None = None,
                  invite: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    invited = _invitation_context(session, invite)
    return page(request, "register.html", {"next": safe_next(next), "error": None,
                                           "username": invited.get("invite_username", ""), **invited})


@router.post("/register", response_model=None)
async def register_submit(request: Request, session: SessionDep, guard: AuthGuardDep,
                          username: Annotated[str, Form(max_length=64)],
                          password: Annotated[str, Form(max_length=256)], csrf_token: Annotated[str, Form()] = "",
                          next: Annotated[str, Form()] = "/",
                          email: Annotated[str, Form(max_length=254)] = "",
                          invite: Annotated[str, Form(max_length=64)] = "") -> Response:
    check_form_csrf(request, csrf_token)
    invited = await run_in_threadpool(_invitation_context, session, invite)
    try:
        body = UserCreate(username=username, password=password, email=email.strip() or None,
                          invitation=invite or None)
        guard.check(client=client_address(request), username=body.username)
        await run_in_threadpool(lambda: check_registration(
            session=session, registration=request.app.state.settings.registration, username=body.username,
            invitation=body.invitation))
        user = await guard.hashing(lambda: create_user(session=session, username=body.username,
                                                       password=body.password, email=body.email,
                                                       invitation=body.invitation))
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        message = {"username": "Usernames are 3-32 letters, digits, '_', '.' or '-'.",
                   "email": "That is not an email address."}.get(field, "Passwords need at least 8 characters.")
        return page(request, "register.html", {"next": safe_next(next), "error": message, **invited,
                                               "username": username}, status_code=422)
    except AppError as exc:
        return page(request, "register.html", {"next": safe_next(next), "error": exc.detail, **invited,
                                               "username": username}, status_code=exc.status_code)
    await run_in_threadpool(start_session, request, session, user.id)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf_token: Annotated[str, Form()] = "") -> RedirectResponse:
    """Log out: the server-side session ends, so the cookie (and any copy of it) is dead."""
    check_form_csrf(request, csrf_token)
    close_session(session=session, secret=request.session.get("sid"))
    request.session.clear()
    return RedirectResponse("/", status_code=303)
