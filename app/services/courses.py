"""Courses: the course files mirrored into the database, membership (join code, roster, staff), assignment lookup.

Course and assignment definitions live in files (`courses/<course>/...`, graders/course.py); people live in the
database: members and their roles, invitations from a roster, extensions set by staff, overrides, scores.
Creating a course or an assignment in the browser writes the file, then syncs, so the files stay the one
definition.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import AppError, not_found
from app.models import (
    Assignment,
    AssignmentProblem,
    Course,
    CourseInvitation,
    CourseMember,
    CourseRole,
    Problem,
    Role,
    User,
    utcnow,
)
from app.services.grades import lock_scores, refresh_assignment
from graders.course import (
    ASSIGNMENTS_DIR,
    COURSE_FILE,
    USERNAME,
    CourseBank,
    CourseFileError,
    LoadedAssignment,
    LoadedCourse,
    parse_assignment,
    parse_course,
)
from graders.problem import ID_PATTERN

log = logging.getLogger("gradax.courses")

# No 0/O or 1/I/L: join codes are read off a projector and typed by hand.
JOIN_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
ROSTER_MAX_LINES = 5000


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def normalize_join_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def normalize_email(email: str) -> str:
    return email.strip().lower()


# --- files -> database ---------------------------------------------------------------------------------------------

def reload_courses(*, session: Session, bank: CourseBank) -> dict[str, int]:
    """After writing a course file: the course bank read again and mirrored (app/services/reload.py reloads
    problems and courses together)."""
    bank.reload()
    return sync_courses(session=session, bank=bank)


def sync_courses(*, session: Session, bank: CourseBank) -> dict[str, int]:
    """Upsert a row per course and per assignment of the bank; rows whose file is gone become unavailable.
    Staff named in course.yaml become members; scores of changed assignments are recomputed. Commits."""
    courses = {c.id: c for c in session.scalars(select(Course))}
    stats = {"courses": 0, "assignments": 0, "changed": 0, "unavailable": 0, "errors": len(bank.errors)}
    known_problems = set(session.scalars(select(Problem.id)))
    changed: list[Assignment] = []
    seen_assignments: set[int] = set()
    for loaded in bank:
        row = courses.pop(loaded.id, None)
        if row is None:
            row = Course(id=loaded.id, join_code=new_join_code(), created_at=utcnow())
            session.add(row)
        row.title, row.timezone = loaded.spec.title, loaded.spec.timezone
        row.content_hash, row.available, row.updated_at = loaded.content_hash, True, utcnow()
        session.flush()
        _sync_file_staff(session, loaded)
        stats["courses"] += 1
        existing = {a.slug: a for a in session.scalars(select(Assignment).where(Assignment.course_id == loaded.id))}
        for spec in loaded.assignments.values():
            missing = [p.id for p in spec.problems if p.id not in known_problems]
            if missing:
                log.error("assignment %s skipped: unknown problems %s", spec.path, missing)
                continue
            assignment = existing.get(spec.id)
            if assignment is None:
                assignment = Assignment(course_id=loaded.id, slug=spec.id)
                session.add(assignment)
            if assignment.content_hash != spec.content_hash or not assignment.available:
                _apply_assignment(assignment, spec)
                changed.append(assignment)
            session.flush()
            seen_assignments.add(assignment.id)
            stats["assignments"] += 1
        for assignment in existing.values():
            if assignment.id not in seen_assignments and assignment.available:
                assignment.available = False
                stats["unavailable"] += 1
    for row in courses.values():
        row.available = False
        stats["unavailable"] += 1
    session.flush()
    lock_scores(session, [a.id for a in changed])
    for assignment in changed:
        refresh_assignment(session, assignment, reason="assignment")
    stats["changed"] = len(changed)
    session.commit()
    for path, err in bank.errors.items():
        log.error("course file %s skipped:\n%s", path, err)
    return stats


def _apply_assignment(row: Assignment, spec: LoadedAssignment) -> None:
    row.title, row.description = spec.title, spec.spec.description
    row.opens, row.due, row.late_until = spec.window.opens, spec.window.due, spec.window.late_until
    row.penalty_kind, row.penalty_value = spec.policy.kind.value, spec.policy.value
    row.max_points = spec.max_points
    row.file_extensions = {e.student: {"due": e.due.isoformat(),
                                       "late_until": e.late_until.isoformat() if e.late_until else None,
                                       "reason": e.reason} for e in spec.extensions}
    row.content_hash, row.available, row.updated_at = spec.content_hash, True, utcnow()
    row.problems = [AssignmentProblem(problem_id=p.id, position=i, points=p.points)
                    for i, p in enumerate(spec.problems)]


def _sync_file_staff(session: Session, loaded: LoadedCourse) -> None:
    """Instructors and TAs named in course.yaml, by username; the accounts must exist (an unknown name is never
    turned into an invitation: whoever registered that name first would get staff rights)."""
    for role, names in ((CourseRole.INSTRUCTOR, loaded.spec.instructors), (CourseRole.TA, loaded.spec.tas)):
        for name in names:
            user = session.scalar(select(User).where(User.username == name))
            if user is None:
                log.warning("course %s: %s %r has no account yet (gradax user create %s --role instructor)",
                            loaded.id, role.value, name, name)
                continue
            add_member(session, course_id=loaded.id, user=user, role=role, source="file")


# --- courses -------------------------------------------------------------------------------------------------------

def get_course(session: Session, course_id: str) -> Course:
    course = session.get(Course, course_id)
    if course is None or not course.available:
        raise not_found(f"course {course_id!r}")
    return course


def course_role(session: Session, course_id: str, user: User) -> CourseRole | None:
    """The user's role in the course; site admins act as instructors of every course."""
    member = session.get(CourseMember, (course_id, user.id))
    if member is not None:
        return CourseRole(member.role)
    return CourseRole.INSTRUCTOR if user.role == Role.ADMIN.value else None


def require_role(session: Session, course_id: str, user: User, *roles: CourseRole) -> CourseRole:
    """The caller's role if it is one of `roles`; 404 for non-members (a course's existence is not public), 403
    for members without the right."""
    get_course(session, course_id)
    role = course_role(session, course_id, user)
    if role is None:
        raise not_found(f"course {course_id!r}")
    if role not in roles:
        raise AppError(403, f"this needs a course {' or '.join(r.value for r in roles)}; you are a {role.value}")
    return role


def courses_of(session: Session, user: User) -> list[tuple[Course, CourseRole]]:
    """The available courses the user belongs to (every course for site admins), with their role."""
    rows = session.execute(select(Course, CourseMember.role).join(CourseMember, CourseMember.course_id == Course.id)
                           .where(CourseMember.user_id == user.id, Course.available.is_(True))
                           .order_by(Course.title)).all()
    out = [(course, CourseRole(role)) for course, role in rows]
    if user.role == Role.ADMIN.value:
        mine = {c.id for c, _ in out}
        out += [(c, CourseRole.INSTRUCTOR) for c in session.scalars(
            select(Course).where(Course.available.is_(True)).order_by(Course.title)) if c.id not in mine]
    return out


@dataclass(frozen=True)
class CourseWrite:
    course_id: str
    path: Path


def write_course_file(courses_dir: Path, *, course_id: str, title: str, timezone: str = "UTC") -> CourseWrite:
    """Write `courses/<course_id>/course.yaml` for a new course (refuses to overwrite one)."""
    if not re.match(ID_PATTERN, course_id):
        raise AppError(422, "a course id is 2-64 lowercase letters, digits and '-', starting with a letter or digit")
    path = courses_dir / course_id / COURSE_FILE
    if path.exists():
        raise AppError(409, f"course {course_id!r} exists already")
    text = render_yaml({"title": title, "timezone": timezone})
    try:
        parse_course(text, path)
    except CourseFileError as exc:
        raise AppError(422, str(exc).replace(str(path), COURSE_FILE)) from exc
    write_atomically(path, text)
    return CourseWrite(course_id, path)


def create_course(session: Session, bank: CourseBank, *, course_id: str, title: str, creator: User,
                  timezone: str = "UTC") -> Course:
    """A new course: its course.yaml written in the bank's directory, synced, the creator its instructor."""
    if not creator.is_staff:
        raise AppError(403, "only instructors and admins create courses")
    if session.get(Course, course_id) is not None:
        raise AppError(409, f"course {course_id!r} exists already")
    write_course_file(bank.directory, course_id=course_id, title=title, timezone=timezone)
    reload_courses(session=session, bank=bank)
    add_member(session, course_id=course_id, user=creator, role=CourseRole.INSTRUCTOR, source="creator",
               added_by=creator)
    session.commit()
    return get_course(session, course_id)


def rotate_join_code(session: Session, course: Course, *, enabled: bool = True) -> str | None:
    course.join_code = new_join_code() if enabled else None
    session.commit()
    return course.join_code


# --- membership ----------------------------------------------------------------------------------------------------

def add_member(session: Session, *, course_id: str, user: User, role: CourseRole, source: str,
               added_by: User | None = None) -> CourseMember:
    """Make the user a member with `role` (changing the role of an existing member). Does not commit."""
    member = session.get(CourseMember, (course_id, user.id))
    if member is None:
        member = CourseMember(course_id=course_id, user_id=user.id, role=role.value, source=source,
                              added_by=added_by.id if added_by else None, joined_at=utcnow())
        session.add(member)
    elif member.role != role.value:
        member.role, member.source = role.value, source
        member.added_by = added_by.id if added_by else member.added_by
    session.flush()
    if role == CourseRole.STUDENT:
        _refresh_member(session, course_id, user.id)
    return member


def remove_member(session: Session, *, course_id: str, user_id: int) -> None:
    member = session.get(CourseMember, (course_id, user_id))
    if member is None:
        raise not_found(f"member {user_id} of course {course_id!r}")
    session.delete(member)
    session.commit()


def _refresh_member(session: Session, course_id: str, user_id: int) -> None:
    # Submits made before joining count under the rule like any others.
    assignments = list(session.scalars(select(Assignment).where(Assignment.course_id == course_id,
                                                                Assignment.available.is_(True))))
    lock_scores(session, [a.id for a in assignments])
    for assignment in assignments:
        refresh_assignment(session, assignment, reason="membership", user_ids=[user_id])


def join_course(session: Session, *, code: str, user: User) -> Course:
    """Join as a student with the course's join code. Already a member: nothing changes."""
    wanted = normalize_join_code(code)
    course = session.scalar(select(Course).where(Course.join_code == wanted, Course.available.is_(True))) \
        if wanted else None
    if course is None:
        raise AppError(404, "no course has this join code; check it with your instructor")
    if session.get(CourseMember, (course.id, user.id)) is None:
        add_member(session, course_id=course.id, user=user, role=CourseRole.STUDENT, source="join_code")
    session.commit()
    return course


def members(session: Session, course_id: str) -> list[tuple[CourseMember, User]]:
    return [(m, u) for m, u in session.execute(
        select(CourseMember, User).join(User, User.id == CourseMember.user_id)
        .where(CourseMember.course_id == course_id).order_by(CourseMember.role, User.username)).all()]


def invitations(session: Session, course_id: str) -> list[CourseInvitation]:
    return list(session.scalars(select(CourseInvitation).where(CourseInvitation.course_id == course_id)
                                .order_by(CourseInvitation.id)))


@dataclass
class RosterResult:
    added: list[str] = field(default_factory=list)  # usernames enrolled now
    already: list[str] = field(default_factory=list)  # already members with that role
    invited: list[str] = field(default_factory=list)  # no account yet: enrolled when it appears
    errors: list[str] = field(default_factory=list)  # "line N: why"


def import_roster(session: Session, *, course_id: str, text: str, added_by: User) -> RosterResult:
    """Enrol a roster: CSV with a header naming `username` and/or `email` columns, and optionally `role`
    (student, ta, instructor; default student). A line without an account becomes an invitation (students only:
    staff rights go to existing accounts, named by username or by an email an LMS verified). Bad lines are
    reported by number and skipped; the rest is applied."""
    result = RosterResult()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
    if not columns & {"username", "email"}:
        raise AppError(422, "the roster needs a header line with a 'username' or an 'email' column "
                            "(and optionally 'role')")
    for number, raw in enumerate(reader, start=2):
        if number > ROSTER_MAX_LINES + 1:
            result.errors.append(f"line {number}: the roster is cut off after {ROSTER_MAX_LINES} lines")
            break
        line = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        username, email = line.get("username", ""), normalize_email(line.get("email", ""))
        if not username and not email:
            continue
        try:
            role = CourseRole(line.get("role") or CourseRole.STUDENT.value)
        except ValueError:
            result.errors.append(f"line {number}: role {line.get('role')!r} is not student, ta or instructor")
            continue
        if email and not EMAIL.match(email):
            result.errors.append(f"line {number}: {email!r} is not an email address")
            continue
        if username and not USERNAME.match(username):
            result.errors.append(f"line {number}: {username!r} is not a username (3-32 letters, digits, '_.-')")
            continue
        user = None
        if username:
            user = session.scalar(select(User).where(User.username == username))
        if user is None and email:
            user = session.scalar(select(User).where(User.email == email))
        label = username or email
        if user is not None and user.username != username and not user.email_verified and role != CourseRole.STUDENT:
            # Matched by an email its account typed at registration: anyone could have typed it, so it names no
            # one well enough for staff rights (the gradebook, everyone's code).
            result.errors.append(f"line {number}: {email!r} is the unverified email of {user.username!r}; staff "
                                 f"({role.value}) are named by username")
            continue
        if user is None:
            if role != CourseRole.STUDENT:
                result.errors.append(f"line {number}: {label!r} has no account; staff ({role.value}) must have one "
                                     "first")
                continue
            _invite(session, course_id=course_id, username=username or None, email=email or None, by=added_by)
            result.invited.append(label)
            continue
        member = session.get(CourseMember, (course_id, user.id))
        if member is not None and member.role == role.value:
            result.already.append(user.username)
            continue
        add_member(session, course_id=course_id, user=user, role=role, source="roster", added_by=added_by)
        result.added.append(user.username)
    session.commit()
    return result


def _invite(session: Session, *, course_id: str, username: str | None, email: str | None, by: User) -> None:
    clauses = []
    if username:
        clauses.append(CourseInvitation.username == username)
    if email:
        clauses.append(CourseInvitation.email == email)
    existing = session.scalar(select(CourseInvitation).where(CourseInvitation.course_id == course_id, or_(*clauses)))
    if existing is None:
        session.add(CourseInvitation(course_id=course_id, username=username, email=email,
                                     role=CourseRole.STUDENT.value, token=secrets.token_urlsafe(24), invited_by=by.id,
                                     invited_at=utcnow()))


def _invitations_of(username: str | None, email: str | None) -> ColumnElement[bool]:
    """The invitations a roster made for this username or email."""
    clauses: list[ColumnElement[bool]] = [CourseInvitation.username == username if username else false()]
    if email and email.strip():
        clauses.append(CourseInvitation.email == normalize_email(email))
    return or_(*clauses)


def invitation_by_token(session: Session, token: str | None) -> CourseInvitation | None:
    """The pending invitation whose link carries `token`."""
    if not token or len(token) > 64:
        return None
    return session.scalar(select(CourseInvitation).where(CourseInvitation.token == token))


def invitation_link(base_url: str, invitation: CourseInvitation) -> str | None:
    """The invitation's Register link on this server (`base_url` ends with "/"), if it has one."""
    return f"{base_url}register?invite={invitation.token}" if invitation.token else None


def is_invited(session: Session, *, username: str, token: str | None = None) -> bool:
    """Whether a course roster invited this username, or `token` is a pending invitation's link. A typed email is
    no invitation: anyone can type anyone's address (the email's invitation is taken through its link)."""
    if invitation_by_token(session, token) is not None:
        return True
    return session.scalar(select(CourseInvitation.id).where(_invitations_of(username, None)).limit(1)) is not None


def accept_invitations(session: Session, user: User, *, by_username: bool = True,
                       token: str | None = None) -> list[str]:
    """Enrol a new (or newly verified) account in the courses whose roster named it; returns the course ids.
    Named means: its username (`by_username`; an LMS launch passes False, since gradax made that username up from
    the email and a roster's `ada` means someone else than ada@elsewhere.org), its email when verified (an LMS or
    an administrator vouched for it), or the invitation whose link (`token`) it registered through. Called at
    registration and when an LMS makes or verifies an account. Commits."""
    joined = []
    clauses = [_invitations_of(user.username if by_username else None, user.email if user.email_verified else None)]
    if token:
        clauses.append(CourseInvitation.token == token)
    for invitation in session.scalars(select(CourseInvitation).where(or_(*clauses))):
        add_member(session, course_id=invitation.course_id, user=user, role=CourseRole(invitation.role),
                   source="roster")
        joined.append(invitation.course_id)
        session.delete(invitation)
    try:
        session.commit()
    except IntegrityError:  # joined meanwhile by another path
        session.rollback()
    return joined


# --- assignments ---------------------------------------------------------------------------------------------------

def list_assignments(session: Session, course_id: str) -> list[Assignment]:
    return list(session.scalars(select(Assignment).where(Assignment.course_id == course_id,
                                                         Assignment.available.is_(True))
                                .order_by(Assignment.due, Assignment.slug)))


def get_assignment(session: Session, course_id: str, slug: str) -> Assignment:
    assignment = session.scalar(select(Assignment).where(Assignment.course_id == course_id,
                                                         Assignment.slug == slug))
    if assignment is None or not assignment.available:
        raise not_found(f"assignment {slug!r} of course {course_id!r}")
    return assignment


@dataclass(frozen=True)
class AssignmentFields:
    """An assignment as the browser or the API gives it (times naive UTC), to be written as its YAML file."""

    title: str
    problems: list[tuple[str, float]]  # (problem id, points)
    due: datetime
    opens: datetime | None = None
    late_until: datetime | None = None
    penalty: tuple[str, float] | None = None  # ("per_day", 0.2) or ("factor", 0.5)
    description: str = ""


def save_assignment(session: Session, bank: CourseBank, *, course_id: str, slug: str, fields: AssignmentFields,
                    by: User) -> Assignment:
    """Write `courses/<course>/assignments/<slug>.yaml` (new, or the fields given changed in place: extensions,
    other keys and the instructor's comments in the file are kept), validated like `gradax check` first, then
    sync. Commits."""
    loaded = bank.get(course_id)
    if loaded is None:
        raise not_found(f"course {course_id!r} in {bank.directory}")
    if not re.match(ID_PATTERN, slug):
        raise AppError(422, "an assignment id is 2-64 lowercase letters, digits and '-'")
    path = loaded.directory / ASSIGNMENTS_DIR / f"{slug}.yaml"
    zone = loaded.zone
    data: dict[str, object] = {"title": fields.title}
    if fields.description:
        data["description"] = fields.description
    if fields.opens is not None:
        data["opens"] = local_text(fields.opens, zone)
    data["due"] = local_text(fields.due, zone)
    if fields.late_until is not None:
        data["late_until"] = local_text(fields.late_until, zone)
    if fields.penalty is not None:
        data["late_penalty"] = {fields.penalty[0]: fields.penalty[1]}
    data["problems"] = [{"id": pid, "points": int(points) if float(points).is_integer() else points}
                        for pid, points in fields.problems]
    header = (f"# Written from gradax by {by.username} at {utcnow().isoformat(timespec='minutes')}Z. Times are in "
              f"{loaded.spec.timezone}. Edit freely; `gradax check` validates.\n")
    text = edit_assignment_yaml(path, data, header)
    try:
        spec = parse_assignment(text, path, course_id=course_id, zone=zone, problem_ids=bank.problem_ids)
        owners = {ref.id: a.id for a in loaded.assignments.values() if a.id != slug for ref in a.problems}
        clashes = [f"problem {p.id!r} is already in assignment {owners[p.id]!r}" for p in spec.problems
                   if p.id in owners]
    except CourseFileError as exc:
        raise AppError(422, "; ".join(e.replace(f"{path}:", "line ") for e in exc.errors)) from exc
    if clashes:
        raise AppError(422, "; ".join(clashes))
    write_atomically(path, text)
    reload_courses(session=session, bank=bank)
    return get_assignment(session, course_id, slug)


def local_text(when: datetime, zone: ZoneInfo) -> str:
    """Naive UTC as the course's wall-clock time, the way an instructor writes it: 2026-03-06 23:59."""
    local = when.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    return local.isoformat(sep=" ", timespec="minutes" if local.second == 0 else "seconds")


# --- writing files -------------------------------------------------------------------------------------------------

def render_yaml(data: dict[str, object]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


ASSIGNMENT_KEYS = ("title", "description", "opens", "due", "late_until", "late_penalty", "problems")
_HEADER_MARK = "# Written from gradax by "


def edit_assignment_yaml(path: Path, fields: dict[str, object], header: str) -> str:
    """The text of an assignment file with `fields` (the form's keys; a key of ASSIGNMENT_KEYS left out is removed).

    An existing file that is a YAML mapping is edited in place with a round-trip parser, so what the instructor
    wrote stays as written: comments, key order, flow or block style, extensions and keys gradax does not set.
    A time that has not changed keeps its spelling; a problem kept in the list keeps its entry (and its comment).
    A new file, or one that is not a mapping (it would not load anyway), is written afresh below `header`.
    """
    from ruamel.yaml import YAML, YAMLError
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML()  # round-trip mode
    yaml.width = 100
    yaml.preserve_quotes = True
    existing: object = None
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            _, sequence, dash = load_yaml_guess_indent(text)
            # The file's own indentation of block lists ("  - id: ...": items at 4, their dash at 2).
            sequence, dash = sequence or 2, dash or 0
            yaml.indent(mapping=max(2, sequence - dash), sequence=sequence, offset=dash)
            existing = yaml.load(text)
        except (OSError, UnicodeDecodeError, YAMLError):
            existing = None
    if not isinstance(existing, CommentedMap):
        return header + render_yaml(fields)
    for key in ASSIGNMENT_KEYS:
        if key not in fields:
            existing.pop(key, None)
    for key, value in fields.items():
        old = existing.get(key)
        if key == "problems" and isinstance(value, list):
            existing[key] = _edited_problems(old, value)
        elif isinstance(old, dict) and isinstance(value, dict):
            if dict(old) != value:
                existing[key] = value
        elif str(old) != str(value):  # the same text (a title, a time) keeps the file's quoting
            existing[key] = value
    out = io.StringIO()
    yaml.dump(existing, out)
    text = out.getvalue()
    if text.startswith(_HEADER_MARK):  # gradax wrote the file before: say who changed it last
        text = header + text.split("\n", 1)[1]
    return text


def _edited_problems(old: object, wanted: list[dict[str, object]]) -> object:
    """The problem list in the form's order and points, reusing the file's entries (their style and comments)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    entries = {str(e.get("id")): e for e in old if isinstance(e, CommentedMap)} if isinstance(old, list) else {}
    flow = bool(entries) and all(e.fa.flow_style() for e in entries.values())
    items: list[object] = []
    for item in wanted:
        entry = entries.get(str(item["id"]))
        if entry is None:
            entry = CommentedMap(item)
            if flow:
                entry.fa.set_flow_style()  # written like its neighbours: {id: ..., points: ...}
        elif entry.get("points") != item["points"]:
            entry["points"] = item["points"]
        items.append(entry)
    if isinstance(old, CommentedSeq):
        old[:] = items  # the list keeps its own comments and style
        return old
    return items


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
