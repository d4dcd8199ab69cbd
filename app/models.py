"""ORM models: users, problems (synced from problems/), attempts with per-test results, progress, and courses
(synced from courses/: assignments; kept here: members, extensions, overrides, effective scores)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.roles import Role as Role  # re-exported: the app imports it from here


def utcnow() -> datetime:
    """Naive UTC: SQLite drops time zones, so every timestamp is stored and compared as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class AttemptStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


ACTIVE_STATUSES = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.STUDENT.value)
    # Optional, lowercased: rosters list students by email, and LMS launches link accounts by it.
    email: Mapped[str | None] = mapped_column(String(254), unique=True, default=None)
    # Whether someone who owns the address vouched for it: an LMS launch (the platform did), never the register
    # form (anyone can type anyone's address). Only a verified email links an LMS identity to this account or
    # gives it a staff role from a roster line, and a verified claim takes an unverified address away.
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.INSTRUCTOR.value, Role.ADMIN.value)


class Problem(Base):
    """A row per problem file, refreshed from the bank at start-up; `available` is false once the file is gone."""

    __tablename__ = "problems"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    track: Mapped[str] = mapped_column(String(64), index=True)
    difficulty: Mapped[str] = mapped_column(String(16))
    order: Mapped[int] = mapped_column(Integer, default=0)
    function: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        # At most one queued or running attempt per user and problem, enforced by the database itself
        # so two simultaneous posts cannot both get in. Partial indexes exist on SQLite and PostgreSQL.
        Index(
            "uq_attempts_one_active", "user_id", "problem_id", unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        # Fair share: at most one attempt of each author is being graded; the rest wait behind it
        # (app/grading/claims.py). A unique index, so two graders racing cannot both start one.
        Index(
            "uq_attempts_one_running_per_user", "user_id", unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_attempts_user_created", "user_id", "created_at"),
        Index("ix_attempts_status", "status"),
        # LTI grade passback looks for Submits graded since its last look (app/lti/passback.py).
        Index("ix_attempts_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"))
    # "run": public tests only (the Run button); "submit": all tests, counts for progress.
    mode: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default=AttemptStatus.QUEUED.value)
    verdict: Mapped[str | None] = mapped_column(String(32), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    passed: Mapped[int | None] = mapped_column(Integer, default=None)
    total: Mapped[int | None] = mapped_column(Integer, default=None)
    report: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    # The problem version this attempt was graded against (problem + reference hash).
    problem_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # Queue workers (app/grading/claims.py): the current claim, who holds it and until when, and when the
    # attempt's message was last sent. A result is written only under the claim that is still current.
    claim_token: Mapped[str | None] = mapped_column(String(36), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # Instructor regrades (app/services/instructor.py): the verdict before the latest regrade, and when it ran.
    previous_verdict: Mapped[str | None] = mapped_column(String(32), default=None)
    regraded_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    tests: Mapped[list[AttemptTest]] = relationship(
        back_populates="attempt", cascade="all, delete-orphan", order_by="AttemptTest.position"
    )


class UploadCheck(Base):
    """An instructor's upload whose `gradax check` runs in the background (app/services/upload_checks.py): the
    files wait here while the reference and the known mistakes are graded (seconds to a minute), its progress and
    result too, so a page reload or another server process shows it, and one whose runner stopped reads as
    interrupted. The files reach problems/ only once the check passed.
    """

    __tablename__ = "upload_checks"
    __table_args__ = (
        # One check of a problem id at a time: two would race to write the same files.
        Index("uq_upload_checks_one_running", "problem_id", unique=True,
              sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[str] = mapped_column(String(64), index=True)
    # running, done (its result says whether it passed and was saved), failed (gradax broke), interrupted
    status: Mapped[str] = mapped_column(String(16), default="running")
    phase: Mapped[str] = mapped_column(String(200), default="")  # what it is doing now, in words
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    replace_existing: Mapped[bool] = mapped_column(Boolean, default=False)
    yaml_text: Mapped[str] = mapped_column(Text)
    reference_text: Mapped[str] = mapped_column(Text)
    # JSON once done: {"errors": [{file, line, message}], "warnings": [...], "written": [file names]}
    result: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    runner: Mapped[str] = mapped_column(String(200), default="")
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class RegradeJob(Base):
    """An instructor's regrade of one problem (app/services/regrades.py): its progress lives here, not in the
    server's memory, so a page reload (or another server process) shows it, and a job whose runner stopped
    sending heartbeats reads as interrupted. The attempts themselves change only through app/grading/claims.py.
    """

    __tablename__ = "regrade_jobs"
    __table_args__ = (
        # One regrade of a problem at a time: two would race for the same attempts.
        Index("uq_regrade_jobs_one_running", "problem_id", unique=True,
              sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[str] = mapped_column(String(64), index=True)
    # running, done, failed, interrupted (its runner stopped: a restart)
    status: Mapped[str] = mapped_column(String(16), default="running")
    # while running: preparing (the problem's reference outputs and compile profile), grading
    phase: Mapped[str] = mapped_column(String(16), default="preparing")
    total: Mapped[int | None] = mapped_column(Integer, default=None)
    done: Mapped[int] = mapped_column(Integer, default=0)
    flipped: Mapped[int] = mapped_column(Integer, default=0)
    workers: Mapped[int] = mapped_column(Integer, default=1)  # attempts regraded at once
    error: Mapped[str | None] = mapped_column(Text, default=None)
    runner: Mapped[str] = mapped_column(String(200), default="")
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    grading_started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class AttemptTest(Base):
    """One test of a graded attempt, queryable for solve rates and common failures."""

    __tablename__ = "attempt_tests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    public: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    # The comparison stage a failed test stopped at (structure, shape, dtype, finite, values, ...).
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    max_abs_error: Mapped[float | None] = mapped_column(Float, default=None)
    max_rel_error: Mapped[float | None] = mapped_column(Float, default=None)
    duration_ms: Mapped[float | None] = mapped_column(Float, default=None)

    attempt: Mapped[Attempt] = relationship(back_populates="tests")


class Progress(Base):
    """Where one user stands on one problem: the last draft, hints revealed, solved or not."""

    __tablename__ = "progress"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    solved: Mapped[bool] = mapped_column(Boolean, default=False)
    solved_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    best_score: Mapped[float] = mapped_column(Float, default=0.0)
    hints_revealed: Mapped[int] = mapped_column(Integer, default=0)
    draft: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class GradingClaim(Base):
    """One claim of an attempt by a queue worker, kept as history: how it ended says whether it wrote the result.

    `outcome`: NULL while held; "done" (wrote the report), "retry" (grader failure, queued again), "expired"
    (the worker stopped renewing its lease: died or hung), "stale" (finished after its claim was taken away),
    "interrupted" (released at a graceful stop), "regraded" / "failed" (an instructor's regrade stored a new
    report / failed on the grader's side).
    """

    __tablename__ = "grading_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(36), unique=True)
    worker: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    # Grading time charged to the attempt's author for this claim (fair share's budget, backend.charged_s):
    # the CPU time of the submission's own run (its wall-clock time where no cgroup measured it); the time
    # held for a grader that died; 0 for interruptions that were not the author's doing, and regrades.
    cost_s: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))


class CourseRole(enum.StrEnum):
    """A member's role in one course (independent of the account's site-wide `Role`)."""

    INSTRUCTOR = "instructor"
    TA = "ta"
    STUDENT = "student"


class Course(Base):
    """A course, mirrored from `courses/<id>/course.yaml`; `available` is false once the directory is gone."""

    __tablename__ = "courses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # IANA name; times without an offset in the course's files are read in it.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Students join with it (POST /api/v1/courses/join); None turns joining by code off.
    join_code: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CourseMember(Base):
    """Who is in a course and as what. `source` says how they got in: creator, file, join_code, roster, staff, lti."""

    __tablename__ = "course_members"
    __table_args__ = (Index("ix_course_members_user", "user_id"),)

    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default=CourseRole.STUDENT.value)
    source: Mapped[str] = mapped_column(String(16), default="staff")
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CourseInvitation(Base):
    """A roster line for someone without an account yet: they become a member when an account with that username
    registers, when someone registers through its link, or when an account with that email verified appears (an
    LMS launch)."""

    __tablename__ = "course_invitations"
    __table_args__ = (Index("ix_course_invitations_course", "course_id"),
                      Index("ix_course_invitations_username", "username"),
                      Index("ix_course_invitations_email", "email"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    role: Mapped[str] = mapped_column(String(16), default=CourseRole.STUDENT.value)
    # The invitation link's secret (`/register?invite=...`): an email invitation is taken only through it, since
    # anyone can type the address into the Register form. Shown to the course's staff, like the join code.
    token: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    invited_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Assignment(Base):
    """An assignment, mirrored from `courses/<course>/assignments/<slug>.yaml`. Times are naive UTC.

    Rows are never deleted (scores, overrides and LMS line items refer to them): a removed file makes the row
    unavailable."""

    __tablename__ = "assignments"
    __table_args__ = (Index("uq_assignments_course_slug", "course_id", "slug", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opens: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    due: Mapped[datetime] = mapped_column(DateTime)
    late_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # graders.grade_rule.PenaltyKind: none, per_day (value = fraction off per started day), factor (value kept).
    penalty_kind: Mapped[str] = mapped_column(String(16), default="none")
    penalty_value: Mapped[float] = mapped_column(Float, default=0.0)
    max_points: Mapped[float] = mapped_column(Float, default=0.0)
    # Extensions written in the file, by username: {"alice": {"due": iso, "late_until": iso|null, "reason": ""}}.
    # Kept by username so they apply to students who register after the sync; staff extensions win over them.
    file_extensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    problems: Mapped[list[AssignmentProblem]] = relationship(
        back_populates="assignment", cascade="all, delete-orphan", order_by="AssignmentProblem.position"
    )


class AssignmentProblem(Base):
    __tablename__ = "assignment_problems"
    __table_args__ = (Index("ix_assignment_problems_problem", "problem_id"),)

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[float] = mapped_column(Float, default=1.0)

    assignment: Mapped[Assignment] = relationship(back_populates="problems")


class Extension(Base):
    """A student's own due date on an assignment, set in the browser or over the API by `granted_by` (source
    "staff"; other sources such as an LMS may follow). It wins over an extension written in the assignment file
    (`Assignment.file_extensions`). One row per (assignment, user, source): setting it again replaces it."""

    __tablename__ = "extensions"
    __table_args__ = (Index("uq_extensions_assignment_user_source", "assignment_id", "user_id", "source",
                            unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(8), default="staff")
    due: Mapped[datetime] = mapped_column(DateTime)
    late_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    granted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScoreOverride(Base):
    """An instructor's manual score for one student on one assignment problem. Append-only history: the newest
    row for (assignment, user, problem) is the current one; `points` NULL there means the override was removed.
    `previous_points` is the effective points just before this row was written."""

    __tablename__ = "score_overrides"
    __table_args__ = (Index("ix_score_overrides_key", "assignment_id", "user_id", "problem_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    problem_id: Mapped[str] = mapped_column(String(64))
    points: Mapped[float | None] = mapped_column(Float, default=None)
    previous_points: Mapped[float | None] = mapped_column(Float, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    set_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AssignmentScore(Base):
    """A student's effective score on an assignment as last computed (app/services/grades.py keeps it current):
    what the gradebook lists, and what a change is measured against before listeners (LMS passback) hear of it."""

    __tablename__ = "assignment_scores"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    points: Mapped[float] = mapped_column(Float, default=0.0)
    max_points: Mapped[float] = mapped_column(Float, default=0.0)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)



class AuthSession(Base):
    """A logged-in session: a browser's cookie or a bearer token carries its id, and it is valid only while this
    row exists, so logging out (which deletes it) ends it on the server, not only in the browser. `id` is the
    SHA-256 of the secret the client holds: a leaked table does not hand out sessions."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "cookie" or "token"
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
