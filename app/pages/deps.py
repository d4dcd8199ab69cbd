"""Who is looking at a page: the cookie's user, or a redirect to log in, or 403; and the forms' CSRF token.

Pages use their own user dependencies: unlike the API's they do not ask for the X-CSRF-Token header (these
are HTML forms, whose token is checked by `check_form_csrf`), and an anonymous visitor is sent to log in
(`LoginRequired`, turned into a redirect by app/main.py) instead of getting 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.api.deps import SAFE_METHODS, SessionDep, cookie_user
from app.core.security import csrf_matches, new_csrf_token
from app.errors import AppError
from app.models import User
from app.services.sessions import COOKIE_LIFETIME, open_session


class LoginRequired(Exception):
    """The page needs a logged-in user: see the log in page, then come back to `next`."""

    def __init__(self, next: str):
        super().__init__(next)
        self.next = next


def get_page_user(request: Request, session: SessionDep) -> User | None:
    return cookie_user(request, session)


PageUser = Annotated[User | None, Depends(get_page_user)]


def get_signed_in_user(request: Request, user: PageUser) -> User:
    if user is None:
        raise LoginRequired(request.url.path)
    return user


SignedInUser = Annotated[User, Depends(get_signed_in_user)]


def get_staff_page_user(user: SignedInUser) -> User:
    """Instructors and admins (anonymous visitors are sent to log in; students get 403)."""
    if not user.is_staff:
        raise AppError(403, "This page is for instructors.")
    return user


StaffPageUser = Annotated[User, Depends(get_staff_page_user)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return str(token)


def check_form_csrf(request: Request, token: str | None) -> None:
    if request.method not in SAFE_METHODS and not csrf_matches(request.session.get("csrf"), token):
        raise AppError(403, "the form expired or came from another site; reload the page and try again")


def start_session(request: Request, session: Session, user_id: int) -> None:
    """A fresh cookie session (and CSRF token) at log in, backed by a server-side session that log out ends:
    nothing planted before it survives, and nothing copied from it outlives the log out."""
    sid = open_session(session=session, user_id=user_id, kind="cookie", lifetime=COOKIE_LIFETIME)
    request.session.clear()
    request.session["uid"] = user_id
    request.session["sid"] = sid
    request.session["csrf"] = new_csrf_token()
