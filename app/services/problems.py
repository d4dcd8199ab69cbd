"""Problems: the bank on disk mirrored into the database, statements rendered, solutions gated."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import not_found
from app.models import Attempt, Problem, Progress, utcnow
from app.schemas import ArgPublic, HintsPublic, ProblemDetail, ProblemSummary, ProgressPublic, PublicTest
from graders.problem import LoadedProblem, ProblemBank, RandomArray

log = logging.getLogger("gradax.problems")

# The curriculum's order of tracks; tracks not listed follow, alphabetically.
TRACK_ORDER = ("nnx-basics", "layers", "state-and-transforms", "training", "architectures")
TRACK_TITLES = {"nnx-basics": "NNX basics", "state-and-transforms": "State and transforms"}


def track_title(track: str) -> str:
    return TRACK_TITLES.get(track) or track.replace("-", " ").capitalize()


def track_rank(track: str) -> tuple[int, str]:
    return (TRACK_ORDER.index(track) if track in TRACK_ORDER else len(TRACK_ORDER), track)


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


@lru_cache(maxsize=256)
def render_statement(markdown: str) -> str:
    """Markdown to HTML, then sanitised: problem files are trusted-ish, but defence in depth is cheap."""
    return nh3.clean(_markdown.render(markdown), link_rel="noopener noreferrer nofollow")


@lru_cache(maxsize=1024)
def render_inline(markdown: str) -> str:
    """One line of Markdown (a hint) to sanitised inline HTML."""
    return nh3.clean(_markdown.renderInline(markdown), link_rel="noopener noreferrer nofollow")


def sync_problems(*, session: Session, bank: ProblemBank) -> dict[str, int]:
    """Upsert a row per loaded problem; rows whose file is gone or broken become unavailable."""
    rows = {p.id: p for p in session.scalars(select(Problem))}
    added = updated = 0
    for loaded in bank:
        p = loaded.problem
        row = rows.pop(loaded.id, None)
        if row is None:
            row = Problem(id=loaded.id)
            session.add(row)
            added += 1
        elif row.content_hash != loaded.content_hash or not row.available:
            updated += 1
        row.title, row.track, row.difficulty, row.order = p.title, p.track, p.difficulty, p.order
        row.function, row.content_hash, row.available = p.function, loaded.content_hash, True
        row.updated_at = utcnow()
    for row in rows.values():
        row.available = False
    session.commit()
    for path, err in bank.errors.items():
        log.error("problem file %s skipped:\n%s", path, err)
    return {"added": added, "updated": updated, "unavailable": len(rows), "errors": len(bank.errors)}


def get_progress(*, session: Session, user_id: int, problem_id: str) -> Progress | None:
    return session.get(Progress, (user_id, problem_id))


def get_or_create_progress(*, session: Session, user_id: int, problem_id: str) -> Progress:
    progress = session.get(Progress, (user_id, problem_id))
    if progress is None:
        progress = Progress(user_id=user_id, problem_id=problem_id, attempts=0, solved=False, best_score=0.0,
                            hints_revealed=0)
        session.add(progress)
    return progress


def progress_by_problem(*, session: Session, user_id: int) -> dict[str, Progress]:
    return {p.problem_id: p for p in session.scalars(select(Progress).where(Progress.user_id == user_id))}


def run_counts(*, session: Session, user_id: int, problem_id: str | None = None) -> dict[str, int]:
    """How many times the user pressed Run per problem: Runs are not Submits, but a problem with 21 Runs has
    been started."""
    query = (select(Attempt.problem_id, func.count()).where(Attempt.user_id == user_id, Attempt.mode == "run")
             .group_by(Attempt.problem_id))
    if problem_id is not None:
        query = query.where(Attempt.problem_id == problem_id)
    return {pid: int(n) for pid, n in session.execute(query).all()}


def progress_public(progress: Progress | None, runs: int) -> ProgressPublic:
    public = ProgressPublic.model_validate(progress) if progress else ProgressPublic()
    public.runs = runs
    return public


def public_arg_value(value: Any) -> Any:
    if isinstance(value, RandomArray):
        return {"random": value.random, "shape": value.shape, "seed": value.seed}
    return value


def public_tests(loaded: LoadedProblem) -> list[dict[str, Any]]:
    """The public tests only: hidden tests never leave the server."""
    return [
        {"name": t.name, "description": t.description,
         "args": {k: public_arg_value(v) for k, v in t.args.items()}}
        for t in loaded.problem.tests.public
    ]


def hidden_test_count(loaded: LoadedProblem) -> int:
    tests = loaded.problem.tests
    return len(tests.hidden) + sum(g.count for g in tests.generated)


def solution_for(loaded: LoadedProblem, progress: Progress | None) -> str | None:
    """The reference solution, only for someone who has solved the problem (an accepted Submit)."""
    if progress is None or not progress.solved:
        return None
    return loaded.reference_source.decode("utf-8", errors="replace")


def loaded_problem(bank: ProblemBank, problem_id: str) -> LoadedProblem:
    """The problem as the bank has it, or 404."""
    loaded = bank.get(problem_id)
    if loaded is None:
        raise not_found(f"problem {problem_id!r}")
    return loaded


def list_problems(*, bank: ProblemBank, track: str | None = None, offset: int = 0,
                  limit: int | None = None) -> tuple[list[LoadedProblem], int]:
    """The bank's problems in curriculum order (track, then position). Every page and report lists problems from
    the bank, the same source the problem page reads; the problems table mirrors it for the database's own
    joins and for queue workers (`sync_problems`)."""
    rows = sorted((p for p in bank if track is None or p.problem.track == track),
                  key=lambda p: (track_rank(p.problem.track), p.problem.order, p.id))
    return rows[offset:None if limit is None else offset + limit], len(rows)


def build_summary(loaded: LoadedProblem, progress: Progress | None, logged_in: bool, runs: int = 0) -> ProblemSummary:
    p = loaded.problem
    return ProblemSummary(
        id=p.id, title=p.title, track=p.track, track_title=track_title(p.track), difficulty=p.difficulty,
        order=p.order, progress=progress_public(progress, runs) if logged_in else None,
    )


def build_detail(loaded: LoadedProblem, progress: Progress | None, logged_in: bool, runs: int = 0) -> ProblemDetail:
    p = loaded.problem
    revealed = progress.hints_revealed if progress else 0
    return ProblemDetail(
        id=p.id, title=p.title, track=p.track, track_title=track_title(p.track), difficulty=p.difficulty,
        order=p.order, progress=progress_public(progress, runs) if logged_in else None,
        function=p.function, signature=p.signature, statement=p.statement,
        statement_html=render_statement(p.statement),
        args=[ArgPublic(name=a.name, kind=a.kind, dtype=a.dtype, shape=a.shape, description=a.description)
              for a in p.args],
        returns=p.returns, starter_code=p.starter_code,
        public_tests=[PublicTest.model_validate(t) for t in public_tests(loaded)],
        hidden_tests=hidden_test_count(loaded),
        tolerance=p.tolerance.model_dump(),
        hints_total=len(p.hints), hints=list(p.hints[:revealed]),
        hints_html=[render_inline(h) for h in p.hints[:revealed]],
        draft=progress.draft if progress else None,
        solution=solution_for(loaded, progress),
    )


def reveal_hint(*, session: Session, loaded: LoadedProblem, user_id: int) -> HintsPublic:
    """Reveal the next hint (one at a time); once all are shown this is a no-op."""
    progress = get_or_create_progress(session=session, user_id=user_id, problem_id=loaded.id)
    total = len(loaded.problem.hints)
    progress.hints_revealed = min(total, progress.hints_revealed + 1)
    session.commit()
    shown = loaded.problem.hints[:progress.hints_revealed]
    return HintsPublic(hints=list(shown), hints_html=[render_inline(h) for h in shown], hints_total=total)
