"""Who a launch signs in: the account linked to the platform's `sub`, else one linked by email, else a new one.

Roles come from the launch's roles claim (LIS vocabulary, full URIs or the short names some platforms send):
Instructor (and Administrator, ContentDeveloper) -> instructor, TeachingAssistant -> TA, anything else -> student.
Course roles, not site roles: an LMS instructor is an instructor of the mapped course (app/lti/enrolment.py).
An LTI account has no password (it signs in through its LMS).
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.lti.launch import Launch
from app.lti.models import LtiUserLink
from app.models import CourseRole, Role, User, utcnow
from app.services.courses import accept_invitations
from app.services.users import take_verified_email

# Not an argon2 hash: verify_password never accepts anything for it, so the account has no password login.
NO_PASSWORD = "!lti"
USERNAME_MAX = 32


def course_role(roles: list[str]) -> CourseRole:
    """The course role a roles claim grants (the strongest one listed)."""
    names: set[str] = set()
    for role in roles:
        # ".../membership#Instructor", ".../membership/Instructor#TeachingAssistant", "Instructor"
        tail = role.rsplit("/", 1)[-1]
        names.update(p for p in re.split(r"[#/]", tail) if p)
        names.add(role.rsplit("#", 1)[-1])
    if "TeachingAssistant" in names:
        return CourseRole.TA
    if names & {"Instructor", "Administrator", "ContentDeveloper"}:
        return CourseRole.INSTRUCTOR
    return CourseRole.STUDENT


def _base_username(claims: dict[str, object]) -> str:
    email = claims.get("email")
    candidates = [email.split("@", 1)[0] if isinstance(email, str) else "",
                  str(claims.get("preferred_username") or ""), str(claims.get("name") or ""),
                  str(claims.get("given_name") or "")]
    for c in candidates:
        cleaned = re.sub(r"[^A-Za-z0-9_.-]+", ".", c.strip()).strip(".-_").lower()
        if len(cleaned) >= 3:
            return cleaned[:USERNAME_MAX - 5]
    return "lti-user"


def _free_username(session: Session, base: str) -> str:
    taken = set(session.scalars(select(User.username).where(func.lower(User.username).like(f"{base}%"))))
    if base not in taken:
        return base
    for _ in range(20):
        candidate = f"{base}-{secrets.randbelow(10_000):04d}"
        if candidate not in taken:
            return candidate
    return f"{base[:20]}-{secrets.token_hex(4)}"


def sign_in(session: Session, launch: Launch) -> User:
    """The account for this launch, created or linked, with its link row refreshed. Commits.

    Linked by (platform, sub) first; else by email, to the account whose email an LMS verified (a student who
    arrives from a second LMS), never to one that only typed it at registration: anyone can type anyone's
    address, and that account would be handed this person's LMS identity, work and course role. A new account
    takes the email, verified, when no verified account has it (an account that typed it loses it), and joins
    the courses whose roster invited it."""
    claims = launch.claims
    raw_email = claims.get("email")
    email = raw_email.strip().lower() if isinstance(raw_email, str) and "@" in raw_email else None
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    link = session.get(LtiUserLink, (launch.platform.id, launch.sub))
    user = session.get(User, link.user_id) if link is not None else None
    if user is None and email:
        user = _user_by_email(session, email)
    created = user is None
    if user is None:
        email_free = email is not None and take_verified_email(session, email)
        user = User(username=_free_username(session, _base_username(claims)), password_hash=NO_PASSWORD,
                    role=Role.STUDENT.value, email=email if email_free else None, email_verified=email_free)
        session.add(user)
        session.flush()
    if link is None:
        link = LtiUserLink(platform_id=launch.platform.id, sub=launch.sub, user_id=user.id)
        session.add(link)
    link.user_id, link.email, link.name, link.last_launch_at = user.id, email, (name or "")[:200] or None, utcnow()
    session.commit()
    if created:
        accept_invitations(session, user)
    return user


def _user_by_email(session: Session, email: str) -> User | None:
    """The account whose verified email this is, else one already linked to it through another platform."""
    user = session.scalar(select(User).where(User.email == email, User.email_verified.is_(True)))
    if user is not None:
        return user
    row = session.scalar(select(LtiUserLink.user_id).where(func.lower(LtiUserLink.email) == email)
                         .order_by(LtiUserLink.created_at).limit(1))
    return session.get(User, row) if row is not None else None
