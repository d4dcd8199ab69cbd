"""User accounts: create, authenticate, look up."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.security import hash_password, needs_rehash, verify_password
from app.errors import AppError
from app.models import Role, User
from app.services.courses import accept_invitations, invitation_by_token, is_invited

REGISTRATION_CLOSED = ("Registration is closed on this server: your instructor creates accounts, or you open gradax "
                       "from your course's LMS.")
REGISTRATION_BY_INVITATION = ("Registration here is by invitation: register with the username your course's roster "
                              "lists, or through the invitation link your instructor sent you. Ask your instructor "
                              "to add you.")
INVITATION_GONE = ("This invitation link is not valid: it was used already, or the instructor withdrew it. Log in "
                   "if you registered through it; else ask your instructor for a new one.")


def get_user_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def take_verified_email(session: Session, email: str) -> bool:
    """Whether an account may take `email` as verified (an LMS vouched for it): yes when no account has it, or
    when the one that has it only typed it (unverified), which then loses it; flushed, so the new holder can be
    written next. No when a verified account has it."""
    holder = session.scalar(select(User).where(User.email == email))
    if holder is None:
        return True
    if holder.email_verified:
        return False
    holder.email = None
    session.flush()
    return True


def create_user(*, session: Session, username: str, password: str, role: Role = Role.STUDENT,
                email: str | None = None, email_verified: bool = False, invitation: str | None = None) -> User:
    """A new account; it joins the courses whose roster invited its username, its email if verified, or the
    invitation whose link it registered through (`invitation`, the link's token: the account takes that
    invitation's email, verified, since the link went to that address). `email_verified` when an administrator
    gave the email (`gradax user create --email`). A verified email takes the address from an account that only
    typed it."""
    if get_user_by_username(session=session, username=username) is not None:
        raise AppError(409, f"the username {username!r} is taken")
    email = email.strip().lower() if email else None
    if invitation is not None:
        invited = invitation_by_token(session, invitation)
        if invited is None:
            raise AppError(404, INVITATION_GONE)
        if invited.email:
            if email and email != invited.email:
                raise AppError(422, f"this invitation is for {invited.email}; register through it without another "
                                    "email, or without the link")
            email, email_verified = invited.email, True
    if email and email_verified and not take_verified_email(session, email):
        raise AppError(409, "another account has this email address, verified")
    if email and not email_verified and session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AppError(409, "another account has this email address")
    user = User(username=username, password_hash=hash_password(password), role=role.value, email=email,
                email_verified=bool(email) and email_verified)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent registration won the race
        session.rollback()
        raise AppError(409, f"the username {username!r} or its email is taken") from exc
    accept_invitations(session, user, token=invitation)
    return user


def check_registration(*, session: Session, registration: str, username: str,
                       invitation: str | None = None) -> None:
    """403, saying how accounts are made here, unless this server lets `username` register (GRADAX_REGISTRATION):
    with "invited", a username a roster lists or an invitation's link."""
    if registration == "open" or (registration == "invited"
                                  and is_invited(session, username=username, token=invitation)):
        return
    raise AppError(403, REGISTRATION_BY_INVITATION if registration == "invited" else REGISTRATION_CLOSED)


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    user = get_user_by_username(session=session, username=username)
    if not verify_password(password, user.password_hash if user else None):
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user
