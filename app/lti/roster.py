"""Names and Role Provisioning Services: the LMS course's roster into the mapped gradax course.

Every active member gets an account (linked by the platform's user id, or by email, as a launch would) and a
membership with the role the LMS lists; members the LMS marks Inactive or Deleted lose an LMS-given
membership. People added by other means (course file, staff, roster upload) are left as they are.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.lti.accounts import course_role, sign_in
from app.lti.enrolment import LTI_SOURCE, enrol
from app.lti.launch import Launch
from app.lti.models import LtiContext
from app.lti.services import PlatformServices, ServiceError
from app.models import CourseMember, utcnow

log = logging.getLogger("gradax.lti")


@dataclass(frozen=True)
class RosterSync:
    members: int
    enrolled: int
    removed: int


def sync_roster(session: Session, services: PlatformServices, context: LtiContext) -> RosterSync:
    """Fetch the context's roster (all pages) and apply it. Raises ServiceError when the platform fails."""
    if not context.memberships_url:
        raise ValueError("the LMS has not offered a roster for this course (no Names and Roles claim in a launch)")
    if context.course_id is None:
        raise ValueError("this LMS course is not mapped to a gradax course yet (gradax lti map-context)")
    platform = context.platform
    members = list(services.members(platform, context.memberships_url))
    enrolled = removed = 0
    for m in members:
        sub = m.get("user_id")
        if not isinstance(sub, str) or not sub:
            continue
        roles = [str(r) for r in m.get("roles", []) if isinstance(r, str)]
        claims: dict[str, object] = {"sub": sub}
        claims.update({k: m[k] for k in ("name", "email", "given_name", "family_name") if k in m})
        launch = Launch(platform=platform, claims=claims, message_type="roster", deployment_id=context.deployment_id,
                        roles=roles)
        user = sign_in(session, launch)
        if m.get("status", "Active") == "Active":
            enrol(session, context, user, course_role(roles))
            enrolled += 1
        else:
            member = session.get(CourseMember, (context.course_id, user.id))
            if member is not None and member.source == LTI_SOURCE:
                session.delete(member)
                removed += 1
    context.roster_synced_at = utcnow()
    session.commit()
    return RosterSync(len(members), enrolled, removed)


class RosterScheduler:
    """The server's roster thread: every mapped LMS course with a roster is synced once every `interval_s`.

    A course not synced yet (its first launch just offered the roster) is synced at the next look, so students
    who never launched appear in the gradebook. Several web processes share the work through the database: a
    process claims a course by moving its `roster_synced_at` forward in a conditional UPDATE, and only the one
    whose UPDATE matched syncs it. A failed sync puts the old time back (the status page shows the last sync
    that worked) and this process tries that course again after `retry_s`, not at every look.
    """

    def __init__(self, session_factory: sessionmaker[Session], services: PlatformServices, *, interval_s: float):
        self.session_factory = session_factory
        self.services = services
        self.interval_s = interval_s
        # Every 6 h (the default): a look every minute, a failed course again after 15 min.
        self.poll_s = min(60.0, max(0.2, interval_s / 360))
        self.retry_s = min(900.0, interval_s / 24)
        self._failed: dict[int, float] = {}  # context id -> monotonic time of its last failure here
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0:
            return  # on request only (the status page, `gradax lti sync-roster`)
        self._thread = threading.Thread(target=self._run, name="gradax-lti-roster", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_due()
            except Exception:  # the thread must outlive a broken database or platform
                log.exception("scheduled roster sync failed; trying again shortly")
            self._stop.wait(self.poll_s)

    def sync_due(self) -> list[RosterSync]:
        """Sync every course whose roster is due (and not claimed by another process); what each sync did."""
        cutoff = utcnow() - timedelta(seconds=self.interval_s)
        with self.session_factory() as session:
            due = list(session.execute(
                select(LtiContext.id, LtiContext.roster_synced_at)
                .where(LtiContext.memberships_url.is_not(None), LtiContext.course_id.is_not(None),
                       or_(LtiContext.roster_synced_at.is_(None), LtiContext.roster_synced_at < cutoff))
                .order_by(LtiContext.id)))
        done = []
        for context_id, previous in due:
            failed = self._failed.get(context_id)
            if failed is not None and time.monotonic() - failed < self.retry_s:
                continue
            if not self._claim(context_id, previous):
                continue  # another process took it since we looked
            result = self._sync(context_id, previous)
            if result is not None:
                done.append(result)
        return done

    def _claim(self, context_id: int, previous: datetime | None) -> bool:
        with self.session_factory() as session:
            same = LtiContext.roster_synced_at.is_(None) if previous is None else \
                LtiContext.roster_synced_at == previous
            taken = session.execute(update(LtiContext).where(LtiContext.id == context_id, same)
                                    .values(roster_synced_at=utcnow()))
            session.commit()
            return getattr(taken, "rowcount", 0) == 1

    def _sync(self, context_id: int, previous: datetime | None) -> RosterSync | None:
        with self.session_factory() as session:
            context = session.get(LtiContext, context_id)
            if context is None:
                return None
            try:
                result = sync_roster(session, self.services, context)
            except (ServiceError, ValueError) as exc:
                session.rollback()
                self._failed[context_id] = time.monotonic()
                log.warning("scheduled roster sync of LMS course %r failed (next try in %.0f s): %s",
                            context.context_id, self.retry_s, exc)
                session.execute(update(LtiContext).where(LtiContext.id == context_id)
                                .values(roster_synced_at=previous))
                session.commit()
                return None
        self._failed.pop(context_id, None)
        log.info("roster of LMS course %d synced: %d members, %d enrolled, %d removed", context_id,
                 result.members, result.enrolled, result.removed)
        return result
