"""After a resource launch: the student's grade row for passback, and where the browser goes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.lti.accounts import CourseRole
from app.lti.launch import Launch
from app.lti.models import LtiResourceLink
from app.lti.passback import refresh
from app.lti.services import SCOPE_SCORE
from app.models import User


def after_resource_launch(session: Session, launch: Launch, user: User, link: LtiResourceLink,
                          role: CourseRole) -> str:
    """Record what passback needs for a student, and return the page the link opens."""
    if role == "student" and SCOPE_SCORE in link.ags_scopes:
        refresh(session, link, user.id, launch.sub)
    return destination(link)


def destination(link: LtiResourceLink) -> str:
    if link.target_kind == "problem":
        return f"/problems/{link.target}"
    return "/"
