"""ORM models: users, problems (synced from problems/), attempts with per-test results, and progress."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base


def utcnow() -> datetime:
    """Naive UTC: SQLite drops time zones, so every timestamp is stored and compared as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class Role(enum.StrEnum):
    STUDENT = "student"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"


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
        Index("ix_attempts_user_created", "user_id", "created_at"),
        Index("ix_attempts_status", "status"),
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


class AttemptTest(Base):
    """One test of a graded attempt, queryable for solve rates and common failures."""

    __tablename__ = "attempt_tests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    public: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
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
    (the worker stopped renewing its lease: died or hung), "stale" (finished after its claim was taken away).
    """

    __tablename__ = "grading_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(36), unique=True)
    worker: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
