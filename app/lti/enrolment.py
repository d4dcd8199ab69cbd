"""After a launch: the LMS course's gradax course, the person's membership in it (with the role from the roles
claim), the student's passback row, and the page the link opens.

An LMS course (context) maps to the gradax course of the first assignment linked in it: when an instructor of
that gradax course picks it through deep linking, or launches a link naming it (a `gradax_course` or
`gradax_assignment` custom parameter); `gradax lti map-context` sets it by hand. Only someone who teaches the
course here may connect it: custom parameters are whatever the link's author typed (Moodle lets any teacher
type them), and every member of the LMS course joins the gradax course with their LMS role, so a teacher of any
LMS course (a sandbox course a student made) naming `dl-2027/hw1` would otherwise become an instructor of
dl-2027, with its gradebook, overrides and everyone's code. Memberships an LMS gave are kept in step with its
roles claim; memberships set otherwise (course file, staff, roster) are never downgraded.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti.launch import CLAIM_CUSTOM, Launch
from app.lti.links import Target
from app.lti.models import LtiContext, LtiResourceLink
from app.lti.passback import refresh
from app.lti.services import SCOPE_SCORE
from app.models import Assignment, Course, CourseMember, CourseRole, User
from app.services.courses import add_member
from app.services.courses import course_role as course_role_here

log = logging.getLogger("gradax.lti")
LTI_SOURCE = "lti"
CUSTOM_COURSE = "gradax_course"


def assignment_of(session: Session, target: str) -> Assignment | None:
    """The assignment named by a link target "<course>/<assignment>"."""
    course_id, _, slug = target.partition("/")
    return session.scalar(select(Assignment).where(Assignment.course_id == course_id, Assignment.slug == slug))


def map_context(session: Session, context: LtiContext | None, course_id: str | None) -> None:
    """Map the LMS course to a gradax course the first time one is named (a later, different one is logged)."""
    if context is None or not course_id or session.get(Course, course_id) is None:
        return
    if context.course_id is None:
        context.course_id = course_id
        log.info("LTI context %s of platform %d is course %s", context.context_id, context.platform_id, course_id)
    elif context.course_id != course_id:
        log.warning("LTI context %s is course %s; a link in it names course %s (kept %s)", context.context_id,
                    context.course_id, course_id, context.course_id)


def teaches(session: Session, user: User, course_id: str) -> bool:
    """Whether the account is an instructor of the gradax course (site admins are), so may connect an LMS
    course to it."""
    return course_role_here(session, course_id, user) == CourseRole.INSTRUCTOR


def course_named_by(session: Session, launch: Launch, target: Target | None) -> str | None:
    custom = launch.claim(CLAIM_CUSTOM).get(CUSTOM_COURSE)
    if isinstance(custom, str) and custom:
        return custom
    if target is not None and target.kind == "assignment":
        assignment = assignment_of(session, target.id)
        return assignment.course_id if assignment is not None else None
    return None


def enrol(session: Session, context: LtiContext | None, user: User, role: CourseRole) -> None:
    """Make the person a member of the context's course with the LMS role (see the module docstring)."""
    if context is None or context.course_id is None:
        return
    member = session.get(CourseMember, (context.course_id, user.id))
    if member is not None and member.source != LTI_SOURCE:
        return
    add_member(session, course_id=context.course_id, user=user, role=role, source=LTI_SOURCE)


def after_resource_launch(session: Session, launch: Launch, user: User, context: LtiContext | None,
                          link: LtiResourceLink, role: CourseRole) -> str:
    """Enrol, record what passback needs for a student, and return the page the link opens."""
    named = course_named_by(session, launch, Target(link.target_kind, link.target))
    if named and context is not None and context.course_id is None and not teaches(session, user, named):
        log.warning("LTI context %s of platform %d: a link names course %s, but %s does not teach it here: not "
                    "connected", context.context_id, context.platform_id, named, user.username)
    else:
        map_context(session, context, named)
    enrol(session, context, user, role)
    if role == CourseRole.STUDENT and SCOPE_SCORE in link.ags_scopes:
        refresh(session, link, user.id, launch.sub)
    return destination(session, link)


def destination(session: Session, link: LtiResourceLink) -> str:
    if link.target_kind == "problem":
        return f"/problems/{link.target}"
    # An assignment opens its course's page: the student's assignments with due dates, points and standing.
    assignment = assignment_of(session, link.target)
    return f"/courses/{assignment.course_id}" if assignment is not None else "/"
