"""Request and response bodies of the JSON API (pydantic). Lists are `{data, count}`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
EMAIL_PATTERN = r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$"
# Ids and offsets past a signed 64-bit integer cannot reach the database (SQLite raises OverflowError): 422.
MAX_DB_INT = 2**63 - 1
# Row ids are INTEGER columns, 32-bit on PostgreSQL, which refuses to compare one with a larger number (a 500
# there, a plain miss on SQLite): an id past it is a 422 on both.
MAX_ID = 2**31 - 1


class Page(BaseModel, Generic[T]):
    data: list[T]
    count: int = Field(description="total number of items matching, across all pages")
    offset: int
    limit: int


class Message(BaseModel):
    detail: str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description="3-32 letters, digits, '_', '.', '-'")
    password: str = Field(min_length=8, max_length=256)
    email: str | None = Field(None, pattern=EMAIL_PATTERN, max_length=254,
                              description="optional; unverified (it links no LMS account and takes no invitation)")
    invitation: str | None = Field(None, max_length=64,
                                   description="the token of a course invitation link (`/register?invite=...`): "
                                               "the account joins that course and takes the invitation's email")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ProgressPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempts: int = 0
    solved: bool = False
    solved_at: datetime | None = None
    best_score: float = 0.0
    hints_revealed: int = 0
    runs: int = Field(0, description="Run presses (public tests only); a problem with runs counts as started")


class ProblemSummary(BaseModel):
    id: str
    title: str
    track: str
    track_title: str = Field("", description="the track's name for people (the breadcrumb)")
    difficulty: str
    order: int
    progress: ProgressPublic | None = Field(None, description="the caller's progress; null when not logged in")


class ArgPublic(BaseModel):
    name: str
    kind: str
    dtype: str
    shape: list[str | int] | None = None
    description: str = ""


class PublicTest(BaseModel):
    name: str
    description: str = ""
    args: dict[str, Any]


class ExampleArg(BaseModel):
    name: str
    kind: Literal["scalar", "array"]
    value: float | None = Field(None, description="a scalar's value (scalars arrive as Python floats)")
    dtype: str | None = None
    shape: list[int] | None = None
    values: Any = Field(None, description="an array's values as nested lists (exact)")
    preview: str | None = Field(None, description="the array printed by numpy (long arrays summarised)")


class ExampleOutput(BaseModel):
    tree: dict[str, Any] = Field(description="the structure: leaf / tuple / list / dict (as the harness sends it)")
    leaves: list[dict[str, Any]] = Field(description="the arrays of the tree: {dtype, shape, values}")


class PublicExample(BaseModel):
    name: str
    description: str = ""
    args: list[ExampleArg]
    snippet: str = Field(description="Python that builds the arguments exactly as the grader passes them")
    expected: ExampleOutput | None = Field(None, description="the reference output; null if it cannot be computed")
    expected_text: str | None = Field(None, description="the expected output printed as in reports")


class ProblemDetail(ProblemSummary):
    function: str
    signature: str
    statement: str = Field(description="Markdown source")
    statement_html: str = Field(description="rendered and sanitised HTML")
    args: list[ArgPublic]
    returns: str
    starter_code: str
    public_tests: list[PublicTest]
    hidden_tests: int = Field(description="how many tests Submit adds to the public ones")
    tolerance: dict[str, Any]
    hints_total: int
    hints: list[str] = Field(description="the hints the caller has revealed so far (Markdown)")
    hints_html: list[str] = Field(description="the same hints as sanitised HTML")
    draft: str | None = Field(None, description="the caller's last code for this problem")
    solution: str | None = Field(None, description="the reference solution, once the caller has solved the problem")


class HintsPublic(BaseModel):
    hints: list[str]
    hints_html: list[str] = Field(description="the same hints as sanitised HTML")
    hints_total: int


class DraftUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str


class SubmissionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem_id: str = Field(max_length=64)
    code: str
    mode: Literal["submit", "run"] = Field("submit", description="'run': public tests only; 'submit': all tests")


class SubmissionCreated(BaseModel):
    id: int
    status: str


class SubmissionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    problem_id: str
    mode: str
    status: Literal["queued", "running", "done"]
    verdict: str | None
    score: float | None
    passed: int | None
    total: int | None
    created_at: datetime
    finished_at: datetime | None


class SubmissionDetail(SubmissionSummary):
    code: str
    report: dict[str, Any] | None = Field(None, description="the grading report (JSON version 1) once done")
    diagnosis_html: str | None = Field(None, description="the report's diagnosis (Markdown) as sanitised HTML")
    phase: Literal["queued", "preparing", "running", "done"] = Field(
        "queued", description="finer than status: 'preparing' while the problem's reference outputs and compile "
                              "profile are computed (its first use), before or while the code runs")
    queue_position: int | None = Field(None, description="while queued: 1 = next to start")
    estimate_s: float | None = Field(None, description="about this many seconds until the verdict (None: unknown)")
