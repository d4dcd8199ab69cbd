"""Grade passback (LTI Assignment and Grade Services): every change of a student's effective score reaches
the LMS's grade column, once, even across platform outages and restarts.

The outbox is the `lti_grade_syncs` table (one row per resource link and student, see its docstring):
- `refresh` re-derives a row's score from the gradebook (app/lti/scores.py); a different score makes the row
  due now, an equal one changes nothing (so equal scores are never posted twice);
- the `PassbackSender` thread of the server notices graded Submits (attempts finished since its last look,
  with an overlap so a slow commit is not missed), refreshes those students' rows, and posts due rows,
  each under a short claim so two server processes never post the same row at once;
- a failed post stays due with exponential backoff (`lti_retry_base_s` doubling up to `lti_retry_max_s`); its
  error is kept for the instructor's sync status; nothing is dropped;
- course score changes that finish no attempt (overrides, extensions, assignment files) arrive through the
  score listener (`on_score_change`), in the transaction that made them, from any grading process;
- at start and every `lti_reconcile_s` every row is re-derived, which also catches changes made while the
  server was down;
- the line item is the one the platform made from our deep link (its URL comes with each launch); without
  one, we look for ours (by resource link and tag) and create it only when none exists, then keep its URL.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.lti.models import LtiGradeSync, LtiResourceLink
from app.lti.scores import effective_score
from app.lti.services import SCOPE_LINEITEM, SCOPE_SCORE, PlatformServices, ServiceError
from app.models import Assignment, Attempt, utcnow
from app.services.score_events import ScoreChange, add_score_listener

log = logging.getLogger("gradax.lti.passback")

LINEITEM_TAG = "gradax"
CLAIM_S = 120.0
# Attempts whose result was committed a little after their finished_at stamp are still seen.
CHANGE_OVERLAP = timedelta(seconds=30)


def refresh(session: Session, link: LtiResourceLink, user_id: int, lti_user_id: str) -> LtiGradeSync:
    """Create or update the student's row from the gradebook; a changed score becomes due at once."""
    row = session.scalar(select(LtiGradeSync).where(LtiGradeSync.link_id == link.id,
                                                    LtiGradeSync.user_id == user_id))
    given, maximum = effective_score(session, link, user_id)
    now = utcnow()
    if row is None:
        row = LtiGradeSync(link_id=link.id, user_id=user_id, lti_user_id=lti_user_id, score_given=given,
                           score_maximum=maximum, changed_at=now, next_try_at=now, tries=0)
        session.add(row)
        session.flush()
        return row
    row.lti_user_id = lti_user_id or row.lti_user_id
    if (given, maximum) != (row.score_given, row.score_maximum):
        row.score_given, row.score_maximum, row.changed_at = given, maximum, now
        row.next_try_at, row.tries, row.last_error = now, 0, None
    return row


def refresh_user(session: Session, user_id: int) -> int:
    """Re-derive every row of one student; returns how many became due."""
    due = 0
    for row in session.scalars(select(LtiGradeSync).where(LtiGradeSync.user_id == user_id)):
        before = (row.score_given, row.score_maximum)
        refresh(session, row.link, user_id, row.lti_user_id)
        due += (row.score_given, row.score_maximum) != before
    return due


def refresh_all(session: Session, link_ids: list[int] | None = None) -> int:
    query = select(LtiGradeSync.user_id, LtiGradeSync.link_id, LtiGradeSync.lti_user_id)
    if link_ids is not None:
        query = query.where(LtiGradeSync.link_id.in_(link_ids))
    rows = session.execute(query).all()
    for user_id, link_id, lti_user_id in rows:
        link = session.get(LtiResourceLink, link_id)
        if link is not None:
            refresh(session, link, user_id, lti_user_id)
    session.commit()
    return len(rows)


def on_score_change(session: Session, change: ScoreChange) -> None:
    """Score listener (app/services/score_events.py), inside the transaction that changed the score: the
    student's rows on links to the assignment, or to one of its problems, are re-derived and so become due.
    No network here; the sender posts after the commit. A failure is logged, never raised (that would roll
    back the grading that triggered it); the periodic reconcile then catches the row up."""
    try:
        assignment = session.get(Assignment, change.assignment_id)
        if assignment is None:
            return
        problems = [p.problem_id for p in assignment.problems]
        rows = session.scalars(
            select(LtiGradeSync).join(LtiResourceLink, LtiResourceLink.id == LtiGradeSync.link_id)
            .where(LtiGradeSync.user_id == change.user_id,
                   or_(and_(LtiResourceLink.target_kind == "assignment",
                            LtiResourceLink.target == f"{assignment.course_id}/{assignment.slug}"),
                       and_(LtiResourceLink.target_kind == "problem", LtiResourceLink.target.in_(problems)))))
        for row in rows:
            refresh(session, row.link, row.user_id, row.lti_user_id)
    except Exception:
        log.exception("LTI passback could not record the score change of user %d on assignment %d; the next "
                      "reconcile will", change.user_id, change.assignment_id)


def install_score_listener() -> None:
    """In every process that grades (the server and `gradax worker`s)."""
    add_score_listener(on_score_change)


def resend_all(session: Session, link_ids: list[int]) -> int:
    """"Send all grades again": every student with a score on these links is posted again, now."""
    now = utcnow()
    result = session.execute(update(LtiGradeSync)
                             .where(LtiGradeSync.link_id.in_(link_ids), LtiGradeSync.score_given.is_not(None))
                             .values(force=True, changed_at=now, next_try_at=now, tries=0, last_error=None))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def _due_clause(now: datetime):  # type: ignore[no-untyped-def]
    return (LtiGradeSync.score_given.is_not(None)
            & (LtiGradeSync.next_try_at <= now)
            & or_(LtiGradeSync.claimed_until.is_(None), LtiGradeSync.claimed_until < now)
            & or_(LtiGradeSync.force.is_(True), LtiGradeSync.posted_score.is_(None),
                  LtiGradeSync.posted_score != LtiGradeSync.score_given,
                  LtiGradeSync.posted_maximum != LtiGradeSync.score_maximum))


@dataclass(frozen=True)
class LinkStatus:
    """What an instructor sees for one resource link."""

    link_id: int
    title: str
    students: int
    synced: int  # posted and equal to the current score
    pending: int  # waiting for a (re)try
    failing: int  # pending with at least one failed try
    last_error: str | None
    last_posted_at: datetime | None


def link_status(session: Session, link: LtiResourceLink) -> LinkStatus:
    rows = list(session.scalars(select(LtiGradeSync).where(LtiGradeSync.link_id == link.id)))
    scored = [r for r in rows if r.score_given is not None]
    pending = [r for r in scored if r.force or r.posted_score != r.score_given or r.posted_maximum != r.score_maximum]
    failing = [r for r in pending if r.tries > 0]
    errors = sorted((r for r in failing if r.last_error), key=lambda r: r.next_try_at)
    posted = [r.posted_at for r in rows if r.posted_at is not None]
    return LinkStatus(link.id, link.title, len(rows), len(scored) - len(pending), len(pending), len(failing),
                      errors[-1].last_error if errors else None, max(posted) if posted else None)


class PassbackSender:
    """The server's passback thread (see the module docstring). `nudge()` makes it look at once."""

    def __init__(self, session_factory: sessionmaker[Session], services: PlatformServices, *,
                 retry_base_s: float, retry_max_s: float, reconcile_s: float, poll_s: float = 1.0):
        self.session_factory = session_factory
        self.services = services
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.reconcile_s = reconcile_s
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watermark: datetime | None = None
        self._last_reconcile = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gradax-lti-passback", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        import time

        while not self._stop.is_set():
            try:
                if (self.reconcile_s > 0 and time.monotonic() - self._last_reconcile > self.reconcile_s) \
                        or self._last_reconcile == 0.0:
                    self._last_reconcile = time.monotonic()
                    with self.session_factory() as session:
                        refresh_all(session)
                self.notice_changes()
                while not self._stop.is_set() and self.send_next():
                    pass
            except Exception:
                log.exception("grade passback loop failed; trying again shortly")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def notice_changes(self) -> int:
        """Refresh the rows of students with a Submit graded (or regraded) since the last look."""
        now = utcnow()
        since = (self._watermark or now) - CHANGE_OVERLAP
        with session_scope(self.session_factory) as session:
            users = list(session.scalars(
                select(Attempt.user_id).distinct()
                .where(Attempt.finished_at > since, Attempt.mode == "submit",
                       exists().where(LtiGradeSync.user_id == Attempt.user_id))))
            due = sum(refresh_user(session, u) for u in users)
        self._watermark = now
        return due

    def send_next(self) -> bool:
        """Post one due row; False when none is due."""
        now = utcnow()
        with session_scope(self.session_factory) as session:
            row_id = session.scalar(select(LtiGradeSync.id).where(_due_clause(now))
                                    .order_by(LtiGradeSync.next_try_at, LtiGradeSync.id).limit(1))
            if row_id is None:
                return False
            taken = session.execute(update(LtiGradeSync).where(LtiGradeSync.id == row_id, _due_clause(now))
                                    .values(claimed_until=now + timedelta(seconds=CLAIM_S)))
            if getattr(taken, "rowcount", 0) != 1:
                return True  # another sender took it: look for the next one
        self.send(row_id)
        return True

    def send(self, row_id: int) -> None:
        with session_scope(self.session_factory) as session:
            row = session.get(LtiGradeSync, row_id)
            if row is None or row.score_given is None:
                return
            link = row.link
            score, maximum, stamp = row.score_given, row.score_maximum, row.changed_at
            try:
                lineitem = self._lineitem(session, link, maximum)
                self.services.post_score(link.platform, lineitem, user_id=row.lti_user_id, score_given=score,
                                         score_maximum=maximum, timestamp=stamp)
            except ServiceError as exc:
                row.tries += 1
                delay = min(self.retry_max_s, self.retry_base_s * 2 ** (row.tries - 1)) * random.uniform(0.8, 1.2)
                row.next_try_at = utcnow() + timedelta(seconds=delay)
                row.last_error = str(exc)[:2000]
                row.claimed_until = None
                log.warning("passback of %s for user %d on link %d failed (try %d, next in %.0f s): %s",
                            score, row.user_id, link.id, row.tries, delay, exc)
                return
            # Posted what the row held when we read it; if the score changed meanwhile the row stays due.
            row.posted_score, row.posted_maximum, row.posted_at = score, maximum, utcnow()
            row.force, row.tries, row.last_error, row.claimed_until = False, 0, None, None
            log.info("passback: %s/%s for user %d on link %d", score, maximum, row.user_id, link.id)

    def _lineitem(self, session: Session, link: LtiResourceLink, maximum: float) -> str:
        if SCOPE_SCORE not in link.ags_scopes:
            raise ServiceError("the LMS did not grant the score scope for this link", retryable=False)
        if link.lineitem_url:
            return link.lineitem_url
        if not link.lineitems_url or SCOPE_LINEITEM not in link.ags_scopes:
            raise ServiceError("the LMS gave this link no grade column and no right to create one "
                               "(link it again through deep linking, with grading on)", retryable=False)
        url = self.services.find_lineitem(link.platform, link.lineitems_url, resource_link_id=link.resource_link_id,
                                          tag=LINEITEM_TAG)
        if url is None:
            url = self.services.create_lineitem(
                link.platform, link.lineitems_url, label=link.title or link.target, score_maximum=maximum,
                resource_link_id=link.resource_link_id, resource_id=f"{link.target_kind}:{link.target}",
                tag=LINEITEM_TAG)
        link.lineitem_url = url
        session.flush()
        return url
