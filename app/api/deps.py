"""Dependencies shared by routes: a database session and the caller, by bearer token or session cookie."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.security import csrf_matches, user_id_from_token
from app.models import User
from graders.course import CourseBank
from graders.problem import ProblemBank

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_bank(request: Request) -> ProblemBank:
    bank: ProblemBank = request.app.state.bank
    return bank


def get_course_bank(request: Request) -> CourseBank:
    courses: CourseBank = request.app.state.courses
    return courses


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BankDep = Annotated[ProblemBank, Depends(get_bank)]
CourseBankDep = Annotated[CourseBank, Depends(get_course_bank)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def get_optional_user(request: Request, session: SessionDep, token: TokenDep) -> User | None:
    """The caller, or None when anonymous. A bad bearer token is an error, not anonymity."""
    if token is not None:
        user_id = user_id_from_token(token, request.app.state.secret)
        user = session.get(User, user_id) if user_id is not None else None
        if user is None:
            raise _unauthorized("invalid or expired token")
        return user
    uid = request.session.get("uid")
    if uid is None:
        return None
    user = session.get(User, uid)
    if user is None:  # the account is gone: forget the session
        request.session.clear()
        return None
    # Cookies ride along on cross-site requests; a state-changing call must prove it came from our page.
    if request.method not in SAFE_METHODS and not csrf_matches(request.session.get("csrf"),
                                                                request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise _unauthorized("not authenticated: log in, or send a bearer token from /api/v1/auth/token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_staff_user(user: CurrentUser) -> User:
    if not user.is_staff:
        raise HTTPException(403, "instructors and admins only")
    return user


StaffUser = Annotated[User, Depends(get_staff_user)]
