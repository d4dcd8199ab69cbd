"""Courses API: courses and membership, assignments, extensions, overrides, the gradebook (JSON and CSV) and
instructor review. Times are ISO 8601; sent without an offset they are read as UTC; returned in UTC with a Z.

Non-members get 404 for a course (its existence is not public); members without the right role get 403.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from app.api.deps import CourseBankDep, CurrentUser, SessionDep
from app.errors import AppError
from app.models import Assignment, Course, CourseRole, User
from app.responses import csv_download
from app.services import adjustments, courses, gradebook, review
from app.services.gradebook import iso
from app.services.grades import ExtensionInfo, student_members
from graders.course import in_range
from graders.problem import ID_PATTERN

router = APIRouter(prefix="/courses", tags=["courses"])

STAFF = (CourseRole.INSTRUCTOR, CourseRole.TA)
INSTRUCTOR = (CourseRole.INSTRUCTOR,)
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "CSV, one row per student"}}


def _utc(value: datetime) -> datetime:
    in_range(value)  # before moving it between zones, which overflows at datetime's limits
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=Strict)


def exactly_one(model: M, first: str, second: str) -> M:
    """An after-validator: one of two alternative fields is given, not both, not neither."""
    if (getattr(model, first) is None) == (getattr(model, second) is None):
        raise ValueError(f"give exactly one of {first} or {second}")
    return model


class CourseCreate(Strict):
    id: str = Field(pattern=ID_PATTERN, description="the course's directory name under courses/")
    title: str = Field(min_length=1, max_length=200)
    timezone: str = Field("UTC", description="IANA name; times in the course's files without an offset use it")


class JoinRequest(Strict):
    code: str = Field(min_length=1, max_length=64)


class MemberPut(Strict):
    role: CourseRole


class RosterUpload(Strict):
    csv: str = Field(max_length=2_000_000, description="a header line with username and/or email (and role)")


class ProblemPoints(Strict):
    id: str = Field(pattern=ID_PATTERN)
    points: float = Field(1.0, gt=0, le=10_000)


class Penalty(Strict):
    per_day: float | None = Field(None, gt=0, le=1)
    factor: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one(self) -> Penalty:
        return exactly_one(self, "per_day", "factor")


class AssignmentPut(Strict):
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    problems: list[ProblemPoints] = Field(min_length=1)
    opens: UtcTime | None = None
    due: UtcTime
    late_until: UtcTime | None = None
    late_penalty: Penalty | None = None


class ExtensionPut(Strict):
    due: UtcTime | None = Field(None, description="the student's own due date")
    days: float | None = Field(None, gt=0, le=365, description="or: this many days after the assignment's due date")
    late_until: UtcTime | None = None
    reason: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> ExtensionPut:
        return exactly_one(self, "due", "days")


class OverridePut(Strict):
    points: float = Field(ge=0)
    comment: str = Field(min_length=1, max_length=4000, description="shown to the student")


def _course_json(session: Session, course: Course, role: CourseRole) -> dict[str, Any]:
    data: dict[str, Any] = {"id": course.id, "title": course.title, "timezone": course.timezone,
                            "role": role.value}
    if role == CourseRole.INSTRUCTOR:
        data["join_code"] = course.join_code
    return data


def _assignment_json(a: Assignment) -> dict[str, Any]:
    return {"id": a.slug, "title": a.title, "description": a.description, "opens": iso(a.opens) or None,
            "due": iso(a.due), "late_until": iso(a.late_until) or None,
            "late_penalty": {"kind": a.penalty_kind, "value": a.penalty_value}, "max_points": a.max_points,
            "problems": [{"id": p.problem_id, "points": p.points} for p in a.problems]}


def _assignment(session: Session, course_id: str, slug: str, user: User, *roles: CourseRole) -> Assignment:
    courses.require_role(session, course_id, user, *roles)
    return courses.get_assignment(session, course_id, slug)


# --- courses and membership ----------------------------------------------------------------------------------------

@router.get("")
def list_courses(session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The caller's courses with their role in each."""
    rows = courses.courses_of(session, user)
    return {"data": [_course_json(session, c, r) for c, r in rows], "count": len(rows)}


@router.post("", status_code=201)
def create_course(body: CourseCreate, session: SessionDep, bank: CourseBankDep, user: CurrentUser) -> dict[str, Any]:
    """Create a course (site instructors and admins): writes courses/<id>/course.yaml; the caller is its
    instructor."""
    course = courses.create_course(session, bank, course_id=body.id, title=body.title, creator=user,
                                   timezone=body.timezone)
    return _course_json(session, course, CourseRole.INSTRUCTOR)


@router.post("/join")
def join_course(body: JoinRequest, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Join a course as a student with its join code."""
    course = courses.join_course(session, code=body.code, user=user)
    role = courses.course_role(session, course.id, user) or CourseRole.STUDENT
    return _course_json(session, course, role)


@router.get("/{course_id}")
def read_course(course_id: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The course, the caller's role, and its assignments (instructors also get the join code)."""
    role = courses.require_role(session, course_id, user, *CourseRole)
    data = _course_json(session, courses.get_course(session, course_id), role)
    data["assignments"] = [_assignment_json(a) for a in courses.list_assignments(session, course_id)]
    return data


@router.post("/{course_id}/join-code")
def rotate_join_code(course_id: str, session: SessionDep, user: CurrentUser, enabled: bool = True) -> dict[str, Any]:
    """A new join code (the old one stops working); `enabled=false` turns joining by code off."""
    courses.require_role(session, course_id, user, *INSTRUCTOR)
    return {"join_code": courses.rotate_join_code(session, courses.get_course(session, course_id), enabled=enabled)}


@router.get("/{course_id}/members")
def list_members(course_id: str, request: Request, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Members with role, how they joined and when; roster invitations still waiting for an account."""
    courses.require_role(session, course_id, user, *STAFF)
    rows = courses.members(session, course_id)
    return {"data": [{"username": u.username, "email": u.email, "email_verified": u.email_verified, "role": m.role,
                      "source": m.source, "joined_at": iso(m.joined_at)} for m, u in rows], "count": len(rows),
            "invitations": [{"username": i.username, "email": i.email, "role": i.role, "invited_at": iso(i.invited_at),
                             "link": courses.invitation_link(str(request.base_url), i)}
                            for i in courses.invitations(session, course_id)]}


@router.put("/{course_id}/members/{username}")
def put_member(course_id: str, username: str, body: MemberPut, session: SessionDep,
               user: CurrentUser) -> dict[str, Any]:
    """Add an existing account to the course, or change its role."""
    courses.require_role(session, course_id, user, *INSTRUCTOR)
    member_user = session.query(User).filter_by(username=username).one_or_none()
    if member_user is None:
        raise AppError(404, f"no account {username!r}")
    member = courses.add_member(session, course_id=course_id, user=member_user, role=body.role, source="staff",
                                added_by=user)
    session.commit()
    return {"username": username, "role": member.role}


@router.delete("/{course_id}/members/{username}", status_code=204)
def delete_member(course_id: str, username: str, session: SessionDep, user: CurrentUser) -> Response:
    """Remove a member (their attempts stay; their scores leave the gradebook)."""
    courses.require_role(session, course_id, user, *INSTRUCTOR)
    member_user = session.query(User).filter_by(username=username).one_or_none()
    if member_user is None:
        raise AppError(404, f"no account {username!r}")
    courses.remove_member(session, course_id=course_id, user_id=member_user.id)
    return Response(status_code=204)


@router.post("/{course_id}/roster")
def upload_roster(course_id: str, body: RosterUpload, request: Request, session: SessionDep,
                  user: CurrentUser) -> dict[str, Any]:
    """Enrol a roster (CSV with username and/or email columns, optional role). Accounts that do not exist yet
    become invitations: a username's when that username registers, an email's through its link (`links`, by the
    line's username or email: hand each to its person). Bad lines come back by number; the rest is applied."""
    courses.require_role(session, course_id, user, *INSTRUCTOR)
    result = courses.import_roster(session, course_id=course_id, text=body.csv, added_by=user)
    links = {}
    for invitation in courses.invitations(session, course_id):
        label = invitation.username or invitation.email
        link = courses.invitation_link(str(request.base_url), invitation)
        if label in result.invited and link:
            links[label] = link
    return {"added": result.added, "already": result.already, "invited": result.invited, "links": links,
            "errors": result.errors}


# --- assignments ---------------------------------------------------------------------------------------------------

@router.get("/{course_id}/assignments")
def list_assignments(course_id: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The course's assignments; for a student each with their own due date (extension), points and standing."""
    role = courses.require_role(session, course_id, user, *CourseRole)
    rows = courses.list_assignments(session, course_id)
    if role == CourseRole.STUDENT:
        data = [s.to_json() for s in gradebook.standings(session, user, rows)]
    else:
        data = [_assignment_json(a) for a in rows]
    return {"data": data, "count": len(data)}


@router.get("/{course_id}/assignments/{slug}")
def read_assignment(course_id: str, slug: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    role = courses.require_role(session, course_id, user, *CourseRole)
    assignment = courses.get_assignment(session, course_id, slug)
    if role == CourseRole.STUDENT:
        return gradebook.standings(session, user, [assignment])[0].to_json()
    return _assignment_json(assignment)


@router.put("/{course_id}/assignments/{slug}")
def put_assignment(course_id: str, slug: str, body: AssignmentPut, session: SessionDep, bank: CourseBankDep,
                   user: CurrentUser) -> dict[str, Any]:
    """Create or change an assignment: writes courses/<course>/assignments/<slug>.yaml (validated like
    `gradax check`; 422 with the reasons), then every student's score follows the new dates and points."""
    courses.require_role(session, course_id, user, *INSTRUCTOR)
    penalty = None
    if body.late_penalty is not None:
        penalty = ("per_day", body.late_penalty.per_day) if body.late_penalty.per_day is not None \
            else ("factor", float(body.late_penalty.factor or 0.0))
    fields = courses.AssignmentFields(title=body.title, description=body.description,
                                      problems=[(p.id, p.points) for p in body.problems], due=body.due,
                                      opens=body.opens, late_until=body.late_until, penalty=penalty)
    return _assignment_json(courses.save_assignment(session, bank, course_id=course_id, slug=slug, fields=fields,
                                                    by=user))


# --- extensions ----------------------------------------------------------------------------------------------------

def _extension_json(username: str, info: ExtensionInfo) -> dict[str, Any]:
    return {"username": username, "due": iso(info.due), "late_until": iso(info.late_until) or None,
            "reason": info.reason, "source": info.source, "granted_by": info.granted_by,
            "granted_at": iso(info.granted_at) or None}


@router.get("/{course_id}/assignments/{slug}/extensions")
def list_extensions(course_id: str, slug: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Every extension in force: set by staff (who, when) or written in the assignment file."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    rows = adjustments.list_extensions(session, assignment)
    return {"data": [_extension_json(u.username, info) for u, info in rows], "count": len(rows)}


@router.put("/{course_id}/assignments/{slug}/extensions/{username}")
def put_extension(course_id: str, slug: str, username: str, body: ExtensionPut, session: SessionDep,
                  user: CurrentUser) -> dict[str, Any]:
    """Give a student their own due date (`due`, or `days` after the assignment's); it replaces their previous
    staff extension and wins over one in the file."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    student = adjustments.course_student(session, course_id, username)
    due = body.due if body.due is not None else assignment.due + timedelta(days=float(body.days or 0))
    adjustments.set_extension(session, assignment=assignment, student=student, due=due, late_until=body.late_until,
                              reason=body.reason, by=user)
    info = {u.id: i for u, i in adjustments.list_extensions(session, assignment)}[student.id]
    return _extension_json(username, info)


@router.delete("/{course_id}/assignments/{slug}/extensions/{username}", status_code=204)
def delete_extension(course_id: str, slug: str, username: str, session: SessionDep, user: CurrentUser) -> Response:
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    student = adjustments.course_student(session, course_id, username)
    adjustments.remove_extension(session, assignment=assignment, student=student)
    return Response(status_code=204)


# --- overrides -----------------------------------------------------------------------------------------------------

def _override_json(username: str, e: adjustments.OverrideEntry) -> dict[str, Any]:
    return {"username": username, "problem_id": e.problem_id, "points": e.points,
            "previous_points": e.previous_points, "comment": e.comment, "set_by": e.set_by, "set_at": iso(e.set_at)}


@router.get("/{course_id}/assignments/{slug}/overrides")
def list_overrides(course_id: str, slug: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Every override change on the assignment, newest first (points null: the override was removed)."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    data = []
    for student in student_members(session, assignment.course_id):
        data += [_override_json(student.username, e)
                 for e in adjustments.override_history(session, assignment.id, student.id)]
    data.sort(key=lambda d: d["set_at"], reverse=True)
    return {"data": data, "count": len(data)}


@router.put("/{course_id}/assignments/{slug}/overrides/{username}/{problem_id}")
def put_override(course_id: str, slug: str, username: str, problem_id: str, body: OverridePut, session: SessionDep,
                 user: CurrentUser) -> dict[str, Any]:
    """Set a student's points on one problem of the assignment by hand, with a comment the student sees.
    Recorded with who, when and the points before; later Submits and regrades never replace it."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    student = adjustments.course_student(session, course_id, username)
    adjustments.set_override(session, assignment=assignment, student=student, problem_id=problem_id,
                             points=body.points, comment=body.comment, by=user)
    return _override_json(username, adjustments.override_history(session, assignment.id, student.id)[0])


@router.delete("/{course_id}/assignments/{slug}/overrides/{username}/{problem_id}", status_code=204)
def delete_override(course_id: str, slug: str, username: str, problem_id: str, session: SessionDep,
                    user: CurrentUser) -> Response:
    """Remove the override: the computed points count again (the removal is kept in the history)."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    student = adjustments.course_student(session, course_id, username)
    adjustments.set_override(session, assignment=assignment, student=student, problem_id=problem_id, points=None,
                             comment="", by=user)
    return Response(status_code=204)


# --- gradebook -----------------------------------------------------------------------------------------------------

@router.get("/{course_id}/gradebook")
def read_gradebook(course_id: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Students x assignments: effective points, late, overridden, when the counted Submit came."""
    courses.require_role(session, course_id, user, *STAFF)
    return gradebook.course_gradebook(session, courses.get_course(session, course_id)).to_json()


@router.get("/{course_id}/gradebook.csv", responses=CSV, response_class=Response)
def read_gradebook_csv(course_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """The course gradebook as CSV: per assignment points, submitted_at, late, overridden; then the total."""
    courses.require_role(session, course_id, user, *STAFF)
    book = gradebook.course_gradebook(session, courses.get_course(session, course_id))
    return csv_download(gradebook.course_csv(book), f"{course_id}-gradebook.csv")


@router.get("/{course_id}/assignments/{slug}/gradebook")
def read_assignment_gradebook(course_id: str, slug: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """One assignment: per student the points of every problem, late details, overrides and extensions."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    book = gradebook.course_gradebook(session, courses.get_course(session, course_id), [assignment])
    extensions = dict((u.id, info) for u, info in adjustments.list_extensions(session, assignment))
    students = []
    for row in book.rows:
        g = row.cells[assignment.id].grade
        students.append({
            "username": row.student.username, **row.cells[assignment.id].to_json(),
            "late_hours": round(g.late_by.total_seconds() / 3600, 2) if g.late_by is not None else None,
            "penalty": g.penalty,
            "extension_due": iso(extensions[row.student.id].due) if row.student.id in extensions else None,
            "problems": {pid: {"points": p.points, "computed_points": p.computed_points, "late": p.late,
                               "penalty": p.penalty, "overridden": p.overridden,
                               "override_comment": p.override_comment or None,
                               "attempt_id": p.counted.attempt_id if p.counted else None}
                         for pid, p in g.problems.items()}})
    return {"assignment": _assignment_json(assignment), "students": students}


@router.get("/{course_id}/assignments/{slug}/gradebook.csv", responses=CSV, response_class=Response)
def read_assignment_gradebook_csv(course_id: str, slug: str, session: SessionDep, user: CurrentUser) -> Response:
    """One assignment as CSV: points per problem, total, submitted_at, late, penalty, override, extension."""
    assignment = _assignment(session, course_id, slug, user, *STAFF)
    book = gradebook.course_gradebook(session, courses.get_course(session, course_id), [assignment])
    return csv_download(gradebook.assignment_csv(session, assignment, book), f"{course_id}-{slug}.csv")


# --- review --------------------------------------------------------------------------------------------------------

@router.get("/{course_id}/students/{username}")
def read_student(course_id: str, username: str, session: SessionDep, user: CurrentUser,
                 code: Literal["none", "all"] = "none") -> dict[str, Any]:
    """One student's assignments with every attempt on their problems (time, verdict, score, late flag; with
    `code=all` also the code and report), and their current draft."""
    courses.require_role(session, course_id, user, *STAFF)
    assignments = courses.list_assignments(session, course_id)
    student = adjustments.course_student(session, course_id, username)
    out = []
    for item in review.student_review(session, student, assignments):
        problems = []
        for p in item.problems:
            attempts = []
            for v in p.attempts:
                a = v.attempt
                entry: dict[str, Any] = {"id": a.id, "mode": a.mode, "status": a.status, "verdict": a.verdict,
                                         "score": a.score, "submitted_at": iso(a.created_at),
                                         "timing": v.timing.value if v.timing else None, "late": v.late,
                                         "counted": v.counted}
                if code == "all":
                    entry["code"], entry["report"] = a.code, a.report
                attempts.append(entry)
            problems.append({"id": p.problem_id, "max_points": p.max_points, "draft": p.draft, "attempts": attempts})
        out.append({**item.standing.to_json(), "problems_review": problems})
    return {"username": student.username, "assignments": out}
