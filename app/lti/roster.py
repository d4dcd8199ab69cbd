"""Names and Role Provisioning Services: the LMS course's roster into the mapped gradax course.

Every active member gets an account (linked by the platform's user id, or by email, as a launch would) and a
membership with the role the LMS lists; members the LMS marks Inactive or Deleted lose an LMS-given
membership. People added by other means (course file, staff, roster upload) are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.lti.accounts import course_role, sign_in
from app.lti.enrolment import LTI_SOURCE, enrol
from app.lti.launch import Launch
from app.lti.models import LtiContext
from app.lti.services import PlatformServices
from app.models import CourseMember, utcnow


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
