"""Who a launch signs in: the account linked to the platform's `sub`, else one linked by email, else a new one.

Roles come from the launch's context roles (LIS vocabulary, full URIs or the short names some platforms send;
institution and system roles are ignored): Instructor (and Administrator, ContentDeveloper) -> instructor,
TeachingAssistant -> TA, anything else -> student.
Course roles, not site roles: an LMS instructor is an instructor of the mapped course (app/lti/enrolment.py).
An LTI account has no password (it signs in through its LMS).
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.lti.enrolment import LTI_SOURCE
from app.lti.launch import Launch
from app.lti.models import LtiDeepLinkRequest, LtiGradeSync, LtiUserLink
from app.models import Attempt, CourseMember, CourseRole, Role, User, utcnow
from app.services.courses import accept_invitations, add_member
from app.services.users import take_verified_email

# Not an argon2 hash: verify_password never accepts anything for it, so the account has no password login.
NO_PASSWORD = "!lti"
USERNAME_MAX = 32


# Context (course membership) roles: LTI 1.3's vocabulary, LTI 1.1's URNs, and the simple names LTI 1.3 allows
# for context roles only. Institution and system roles (".../institution/person#Instructor",
# "urn:lti:instrole:...") are who someone is elsewhere at the school: Canvas sends them beside the course's own, and
# a graduate student who teaches another course is an institution Instructor while a Learner in this one.
CONTEXT_ROLE_URI = "http://purl.imsglobal.org/vocab/lis/v2/membership"
CONTEXT_ROLE_URN = "urn:lti:role:ims/lis/"


def _context_role_names(role: str) -> set[str]:
    if role.startswith(CONTEXT_ROLE_URI):
        rest = role[len(CONTEXT_ROLE_URI):]  # "#Instructor", "/Instructor#TeachingAssistant"
    elif role.startswith(CONTEXT_ROLE_URN):
        rest = role[len(CONTEXT_ROLE_URN):]  # "Instructor", "Instructor/TeachingAssistant"
    elif re.fullmatch(r"[A-Za-z]+", role):
        rest = role
    else:
        return set()
    return {part for part in re.split(r"[#/]", rest) if part}


def course_role(roles: list[str]) -> CourseRole:
    """The course role a roles claim grants (the strongest context role listed; institution and system roles
    grant nothing here)."""
    names: set[str] = set()
    for role in roles:
        names |= _context_role_names(role.strip().replace("https://purl.", "http://purl.", 1))
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


def launch_email(launch: Launch) -> str | None:
    raw_email = launch.claims.get("email")
    return raw_email.strip().lower() if isinstance(raw_email, str) and "@" in raw_email else None


def sign_in(session: Session, launch: Launch) -> User:
    """The account for this launch, created or linked, with its link row refreshed. Commits.

    Linked by (platform, sub) first; else by email, to the account whose email an LMS verified (a student who
    arrives from a second LMS), never to one that only typed it at registration: anyone can type anyone's
    address, and that account would be handed this person's LMS identity, work and course role. A new account
    takes the email, verified, when no account has it (else the launch asks: `typed_holder`), and joins the
    courses whose roster invited it."""
    claims = launch.claims
    email = launch_email(launch)
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    link = session.get(LtiUserLink, (launch.platform.id, launch.sub))
    user = session.get(User, link.user_id) if link is not None else None
    if user is None and email:
        user = _user_by_email(session, email)
    created = user is None
    if user is None:
        email_free = email is not None and session.scalar(select(User.id).where(User.email == email)) is None
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
        accept_invitations(session, user, by_username=False)
    return user


def _user_by_email(session: Session, email: str) -> User | None:
    """The account whose verified email this is, else one already linked to it through another platform."""
    user = session.scalar(select(User).where(User.email == email, User.email_verified.is_(True)))
    if user is not None:
        return user
    row = session.scalar(select(LtiUserLink.user_id).where(func.lower(LtiUserLink.email) == email)
                         .order_by(LtiUserLink.created_at).limit(1))
    return session.get(User, row) if row is not None else None


def typed_holder(session: Session, user: User, email: str | None) -> User | None:
    """The account with a password that typed this launch's email at registration, while `user` (the account
    the launch signed in) is one an LMS made that has no work yet and could not take the address: the launch
    asks whether that account is the person's (`link_typed_account` with its password, else
    `keep_new_account`). Roster syncs make such accounts before the person's first launch, so this looks at
    the account, not at whether the launch is the first."""
    if not email or user.password_hash != NO_PASSWORD or user.email == email:
        return None
    holder = session.scalar(select(User).where(User.email == email, User.email_verified.is_(False)))
    if holder is None or holder.id == user.id or holder.password_hash == NO_PASSWORD:
        return None
    return None if _has_attempts(session, user) else holder


def _has_attempts(session: Session, user: User) -> bool:
    return session.scalar(select(Attempt.id).where(Attempt.user_id == user.id).limit(1)) is not None


def keep_new_account(session: Session, user: User, email: str) -> None:
    """The person says the account that typed their email is not theirs: the LMS's word wins, and the address
    moves, verified, to the account the launch signed in (the typist loses it). Commits."""
    _verify_email_and_join(session, user, email)


def _verify_email_and_join(session: Session, user: User, email: str) -> None:
    """The address, verified, on `user` unless a verified account has it; then the invitations it names. Commits."""
    if take_verified_email(session, email):
        user.email, user.email_verified = email, True
    session.commit()
    accept_invitations(session, user, by_username=False)


def link_typed_account(session: Session, launched: User, holder: User, email: str) -> bool:
    """Move a launch's account (its LMS links, course memberships and passback rows) to `holder`, whose
    password the person just gave, and verify the email on it; the launch's account is deleted. Only while that
    account is one an LMS made with no work of its own; False, and nothing changed, otherwise. Commits."""
    if (launched.id == holder.id or launched.password_hash != NO_PASSWORD or holder.password_hash == NO_PASSWORD
            or _has_attempts(session, launched)):
        return False
    for model in (LtiUserLink, LtiGradeSync, LtiDeepLinkRequest):
        session.execute(update(model).where(model.user_id == launched.id).values(user_id=holder.id))
    for member in session.scalars(select(CourseMember).where(CourseMember.user_id == launched.id)).all():
        kept = session.get(CourseMember, (member.course_id, holder.id))
        role, source, course_id = CourseRole(member.role), member.source, member.course_id
        session.delete(member)
        session.flush()
        if kept is None or kept.source == LTI_SOURCE:
            add_member(session, course_id=course_id, user=holder, role=role, source=source)
    session.delete(launched)
    session.flush()
    _verify_email_and_join(session, holder, email)  # still the holder's (or free): verified now
    return True
