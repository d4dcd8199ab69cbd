"""Course pages: my courses (join, create), a course (students: assignments and standing; staff: join code,
roster, members, assignments), the assignment form, the gradebook with its CSV files, and the review of one
student (attempts, diff, draft, extension and override forms).

Forms post with the session's CSRF token and redirect back (post/redirect/get); errors come back on the page.
Times are shown in the viewer's time zone (static/localtime.js) and typed in it (`viewer_tz`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import CourseBankDep, SessionDep
from app.errors import AppError
from app.models import Assignment, CourseRole, User
from app.pages.deps import SignedInUser, check_form_csrf
from app.pages.rendering import back, page
from app.responses import csv_download
from app.services import adjustments, courses, gradebook, review
from app.services.grades import policy_of
from graders.course import in_range
from graders.grade_rule import duration_text

router = APIRouter(prefix="/courses", include_in_schema=False)
STAFF = (CourseRole.INSTRUCTOR, CourseRole.TA)
ROSTER_MAX_BYTES = 1024 * 1024


def viewer_time(text: str, viewer_tz: str, fallback: str) -> datetime | None:
    """A datetime-local value typed in the viewer's time zone, as naive UTC (None when empty)."""
    if not text.strip():
        return None
    try:
        zone = ZoneInfo(viewer_tz or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(fallback)
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise AppError(422, f"{text!r} is not a date and time") from exc
    try:
        in_range(local)
    except ValueError as exc:
        raise AppError(422, str(exc)) from exc
    aware = local if local.tzinfo is not None else local.replace(tzinfo=zone)
    return aware.astimezone(UTC).replace(tzinfo=None)


# --- my courses ----------------------------------------------------------------------------------------------------

@router.get("", response_class=HTMLResponse, response_model=None)
def my_courses(request: Request, session: SessionDep, user: SignedInUser) -> Response:
    return page(request, "courses.html", {"user": user, "courses": courses.courses_of(session, user),
                                          "message": request.query_params.get("m"),
                                          "error": request.query_params.get("e")})


@router.post("/join", response_model=None)
def join(request: Request, session: SessionDep, user: SignedInUser, code: Annotated[str, Form(max_length=64)] = "",
         csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    try:
        course = courses.join_course(session, code=code, user=user)
    except AppError as exc:
        return back("/courses", error=exc.detail)
    return back(f"/courses/{course.id}", message=f"You joined {course.title}.")


@router.post("", response_model=None)
def create(request: Request, session: SessionDep, bank: CourseBankDep, user: SignedInUser,
           course_id: Annotated[str, Form(max_length=64)] = "", title: Annotated[str, Form(max_length=200)] = "",
           timezone: Annotated[str, Form(max_length=64)] = "UTC", csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    try:
        course = courses.create_course(session, bank, course_id=course_id.strip(), title=title.strip() or course_id,
                                       creator=user, timezone=timezone.strip() or "UTC")
    except AppError as exc:
        return back("/courses", error=exc.detail)
    return back(f"/courses/{course.id}", message="Course created. Share the join code, or upload a roster.")


# --- one course ----------------------------------------------------------------------------------------------------

@router.get("/{course_id}", response_class=HTMLResponse, response_model=None)
def course_page(course_id: str, request: Request, session: SessionDep, user: SignedInUser) -> Response:
    role = courses.require_role(session, course_id, user, *CourseRole)
    course = courses.get_course(session, course_id)
    assignments = courses.list_assignments(session, course_id)
    context: dict[str, Any] = {"user": user, "course": course, "role": role.value, "assignments": assignments,
                               "penalty_text": lambda a: policy_of(a).describe(),
                               "message": request.query_params.get("m"), "error": request.query_params.get("e")}
    if role == CourseRole.STUDENT:
        context["standings"] = gradebook.standings(session, user, assignments)
    else:
        context["members"] = courses.members(session, course_id)
        context["invitations"] = courses.invitations(session, course_id)
        context["invitation_link"] = lambda invitation: courses.invitation_link(str(request.base_url), invitation)
    return page(request, "course.html", context)


@router.post("/{course_id}/join-code", response_model=None)
def rotate(course_id: str, request: Request, session: SessionDep, user: SignedInUser,
           csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    courses.require_role(session, course_id, user, CourseRole.INSTRUCTOR)
    courses.rotate_join_code(session, courses.get_course(session, course_id))
    return back(f"/courses/{course_id}", message="A new join code; the old one no longer works.")


@router.post("/{course_id}/roster", response_model=None)
async def roster(course_id: str, request: Request, session: SessionDep, user: SignedInUser,
                 roster_text: Annotated[str, Form(max_length=ROSTER_MAX_BYTES)] = "",
                 roster_file: Annotated[UploadFile | None, File()] = None,
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    courses.require_role(session, course_id, user, CourseRole.INSTRUCTOR)
    text = roster_text
    if roster_file is not None and roster_file.filename:
        data = await roster_file.read(ROSTER_MAX_BYTES + 1)
        if len(data) > ROSTER_MAX_BYTES:
            return back(f"/courses/{course_id}", error="the roster file is over 1 MiB")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return back(f"/courses/{course_id}", error="the roster file is not UTF-8 text")
    try:
        result = courses.import_roster(session, course_id=course_id, text=text, added_by=user)
    except AppError as exc:
        return back(f"/courses/{course_id}", error=exc.detail)
    summary = (f"Roster: {len(result.added)} enrolled, {len(result.already)} already in, "
               f"{len(result.invited)} invited (their invitation links are in the members list: hand each to "
               "its person).")
    return back(f"/courses/{course_id}", message=summary, error=" ".join(result.errors))


# --- assignment form -----------------------------------------------------------------------------------------------

def _problem_lines(text: str) -> list[tuple[str, float]]:
    """"nnx-mlp 10" per line (points optional, default 1)."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.replace(",", " ").split()
        if not parts:
            continue
        try:
            points = float(parts[1]) if len(parts) > 1 else 1.0
        except ValueError as exc:
            raise AppError(422, f"problems, line {number}: {parts[1]!r} is not a number of points") from exc
        out.append((parts[0], points))
    if not out:
        raise AppError(422, "list at least one problem, one per line: its id and its points")
    return out


@router.get("/{course_id}/assignments/{slug}/edit", response_class=HTMLResponse, response_model=None)
def assignment_form(course_id: str, slug: str, request: Request, session: SessionDep, user: SignedInUser) -> Response:
    courses.require_role(session, course_id, user, CourseRole.INSTRUCTOR)
    course = courses.get_course(session, course_id)
    existing = session.scalar(select(Assignment).where(Assignment.course_id == course_id, Assignment.slug == slug,
                                                       Assignment.available.is_(True)))
    return page(request, "assignment_form.html", {"user": user, "course": course, "slug": slug, "a": existing,
                                                  "error": request.query_params.get("e")})


@router.post("/{course_id}/assignments", response_model=None)
def save_assignment(course_id: str, request: Request, session: SessionDep, bank: CourseBankDep, user: SignedInUser,
                    slug: Annotated[str, Form(max_length=64)] = "", title: Annotated[str, Form(max_length=200)] = "",
                    problems: Annotated[str, Form(max_length=20_000)] = "",
                    description: Annotated[str, Form(max_length=5000)] = "",
                    opens: Annotated[str, Form()] = "", due: Annotated[str, Form()] = "",
                    late_until: Annotated[str, Form()] = "", penalty_kind: Annotated[str, Form()] = "none",
                    penalty_value: Annotated[str, Form()] = "", viewer_tz: Annotated[str, Form()] = "",
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    courses.require_role(session, course_id, user, CourseRole.INSTRUCTOR)
    course = courses.get_course(session, course_id)
    slug = slug.strip()
    try:
        due_at = viewer_time(due, viewer_tz, course.timezone)
        if due_at is None:
            raise AppError(422, "give a due date")
        penalty = None
        if penalty_kind in ("per_day", "factor"):
            try:
                value = float(penalty_value.strip().rstrip("%")) / (100 if penalty_value.strip().endswith("%") else 1)
            except ValueError as exc:
                raise AppError(422, f"the late penalty {penalty_value!r} is not a number (0.2 or 20%)") from exc
            penalty = (penalty_kind, value)
        fields = courses.AssignmentFields(
            title=title.strip() or slug, description=description.strip(), problems=_problem_lines(problems),
            due=due_at,
            opens=viewer_time(opens, viewer_tz, course.timezone),
            late_until=viewer_time(late_until, viewer_tz, course.timezone), penalty=penalty)
        courses.save_assignment(session, bank, course_id=course_id, slug=slug, fields=fields, by=user)
    except AppError as exc:
        return back(f"/courses/{course_id}/assignments/{slug or 'new'}/edit", error=exc.detail)
    return back(f"/courses/{course_id}", message=f"Assignment {slug} saved to assignments/{slug}.yaml.")


# --- gradebook -----------------------------------------------------------------------------------------------------

@router.get("/{course_id}/gradebook", response_class=HTMLResponse, response_model=None)
def gradebook_page(course_id: str, request: Request, session: SessionDep, user: SignedInUser) -> Response:
    courses.require_role(session, course_id, user, *STAFF)
    book = gradebook.course_gradebook(session, courses.get_course(session, course_id))
    return page(request, "gradebook.html", {"user": user, "course": book.course, "book": book})


@router.get("/{course_id}/gradebook.csv", response_model=None)
def gradebook_csv(course_id: str, request: Request, session: SessionDep, user: SignedInUser) -> Response:
    courses.require_role(session, course_id, user, *STAFF)
    book = gradebook.course_gradebook(session, courses.get_course(session, course_id))
    return csv_download(gradebook.course_csv(book), f"{course_id}-gradebook.csv")


@router.get("/{course_id}/assignments/{slug}/gradebook.csv", response_model=None)
def assignment_csv(course_id: str, slug: str, request: Request, session: SessionDep, user: SignedInUser) -> Response:
    courses.require_role(session, course_id, user, *STAFF)
    assignment = courses.get_assignment(session, course_id, slug)
    book = gradebook.course_gradebook(session, courses.get_course(session, course_id), [assignment])
    return csv_download(gradebook.assignment_csv(session, assignment, book), f"{course_id}-{slug}.csv")


# --- review of one student -----------------------------------------------------------------------------------------

@router.get("/{course_id}/students/{username}", response_class=HTMLResponse, response_model=None)
def student_page(course_id: str, username: str, request: Request, session: SessionDep, user: SignedInUser,
                 a: int | None = None, b: int | None = None) -> Response:
    courses.require_role(session, course_id, user, *STAFF)
    course = courses.get_course(session, course_id)
    student = adjustments.course_student(session, course_id, username)
    assignments = courses.list_assignments(session, course_id)
    reviews = review.student_review(session, student, assignments)
    diff = None
    if a is not None and b is not None:
        problem_ids = {p.problem_id for x in assignments for p in x.problems}
        old = review.student_attempt(session, student, a, problem_ids)
        new = review.student_attempt(session, student, b, problem_ids)
        diff = {"a": old, "b": new, "lines": review.code_diff(old.code, new.code, f"attempt {old.id}",
                                                              f"attempt {new.id}")}
    histories = {item.standing.assignment.id: adjustments.override_history(session, item.standing.assignment.id,
                                                                           student.id) for item in reviews}
    return page(request, "student_review.html", {
        "user": user, "course": course, "student": student, "reviews": reviews, "diff": diff, "histories": histories,
        "duration_text": duration_text, "message": request.query_params.get("m"),
        "error": request.query_params.get("e")})


def _adjusted(session: Session, course_id: str, slug: str, username: str, user: User) -> tuple[str, Assignment, User]:
    """What an extension or override form changes (course staff only): the student's review page to go back to,
    the assignment and the student."""
    courses.require_role(session, course_id, user, *STAFF)
    return (f"/courses/{course_id}/students/{username}", courses.get_assignment(session, course_id, slug),
            adjustments.course_student(session, course_id, username))


@router.post("/{course_id}/assignments/{slug}/extensions", response_model=None)
def extension(course_id: str, slug: str, request: Request, session: SessionDep, user: SignedInUser,
              username: Annotated[str, Form(max_length=64)] = "", due: Annotated[str, Form()] = "",
              days: Annotated[str, Form()] = "", reason: Annotated[str, Form(max_length=2000)] = "",
              viewer_tz: Annotated[str, Form()] = "", remove: Annotated[str, Form()] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    review_page, assignment, student = _adjusted(session, course_id, slug, username, user)
    try:
        if remove:
            adjustments.remove_extension(session, assignment=assignment, student=student)
            return back(review_page, message=f"Extension on {slug} removed.")
        course = courses.get_course(session, course_id)
        when = viewer_time(due, viewer_tz, course.timezone)
        if when is None:
            try:
                extra = float(days)
            except ValueError:
                extra = 0.0
            if not 0 < extra <= 365:  # (NaN fails too)
                raise AppError(422, "give a new due date, or a number of extra days (up to 365)")
            when = assignment.due + timedelta(days=extra)
        adjustments.set_extension(session, assignment=assignment, student=student, due=when, late_until=None,
                                  reason=reason, by=user)
    except AppError as exc:
        return back(review_page, error=exc.detail)
    return back(review_page, message=f"Extension on {slug} saved.")


@router.post("/{course_id}/assignments/{slug}/overrides", response_model=None)
def override(course_id: str, slug: str, request: Request, session: SessionDep, user: SignedInUser,
             username: Annotated[str, Form(max_length=64)] = "", problem_id: Annotated[str, Form(max_length=64)] = "",
             points: Annotated[str, Form()] = "", comment: Annotated[str, Form(max_length=4000)] = "",
             remove: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    review_page, assignment, student = _adjusted(session, course_id, slug, username, user)
    try:
        value = None
        if not remove:
            try:
                value = float(points)
            except ValueError as exc:
                raise AppError(422, f"{points!r} is not a number of points") from exc
        adjustments.set_override(session, assignment=assignment, student=student, problem_id=problem_id,
                                 points=value, comment=comment, by=user)
    except AppError as exc:
        return back(review_page, error=exc.detail)
    return back(review_page, message=f"Score on {problem_id} {'restored' if remove else 'overridden'}.")
