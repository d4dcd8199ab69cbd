"""Dependencies shared by routes: a database session and the caller, by bearer token or session cookie."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.security import csrf_matches, token_session
from app.core.throttle import AuthGuard
from app.grading.completions import Completions
from app.models import User
from app.services.sessions import session_user
from graders.course import CourseBank
from graders.engine import Grader
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


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_completions(request: Request) -> Completions:
    completions: Completions = request.app.state.completions
    return completions


def get_secret(request: Request) -> str:
    secret: str = request.app.state.secret
    return secret


def get_auth_guard(request: Request) -> AuthGuard:
    guard: AuthGuard = request.app.state.auth_guard
    return guard


def client_address(request: Request) -> str:
    """The client's address (the proxy's X-Forwarded-For when `gradax serve --proxy-headers` trusts it)."""
    return request.client.host if request.client is not None else "unknown"


def get_grader(request: Request) -> Grader:
    grader: Grader = request.app.state.grader
    return grader


SessionDep = Annotated[Session, Depends(get_session)]
SecretDep = Annotated[str, Depends(get_secret)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
CompletionsDep = Annotated[Completions, Depends(get_completions)]
AuthGuardDep = Annotated[AuthGuard, Depends(get_auth_guard)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BankDep = Annotated[ProblemBank, Depends(get_bank)]
CourseBankDep = Annotated[CourseBank, Depends(get_course_bank)]
GraderDep = Annotated[Grader, Depends(get_grader)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def get_optional_user(request: Request, session: SessionDep, token: TokenDep) -> User | None:
    """The caller, or None when anonymous. A bad bearer token is an error, not anonymity."""
    if token is not None:
        claims = token_session(token, request.app.state.secret)
        user = None
        if claims is not None and session_user(session=session, secret=claims[1]) == claims[0]:
            user = session.get(User, claims[0])
        if user is None:  # forged, expired, logged out, or the account is gone
            raise _unauthorized("invalid or expired token")
        return user
    user = cookie_user(request, session)
    if user is None:
        return None
    # Cookies ride along on cross-site requests; a state-changing call must prove it came from our page.
    if request.method not in SAFE_METHODS and not csrf_matches(request.session.get("csrf"),
                                                                request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")
    return user


def cookie_user(request: Request, session: Session) -> User | None:
    """The user of the session cookie while its server-side session is open (log out closes it, so a copy of
    the cookie kept from before is worth nothing)."""
    if "sid" not in request.session:
        return None
    uid = session_user(session=session, secret=request.session.get("sid"))
    user = session.get(User, uid) if uid is not None and uid == request.session.get("uid") else None
    if user is None:  # logged out elsewhere, expired, or the account is gone: forget the session
        request.session.clear()
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
