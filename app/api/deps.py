"""Dependencies shared by routes and pages: what `create_app()` built (database sessions, the problem bank,
the grader, the dispatcher, ...) and the caller, by bearer token or session cookie.

Routes and pages take these as `Annotated` parameters; only this module (and app/lti/deps.py for the LTI
tool's parts) reads `request.app.state`, where `create_app()` keeps one of each part for the app's lifetime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.security import csrf_matches, token_session
from app.core.throttle import AuthGuard
from app.errors import AppError
from app.grading.celery_app import BrokerProbe
from app.grading.completions import Completions
from app.grading.dispatcher import Dispatcher
from app.grading.preparation import BankPreparation
from app.models import User
from app.services.regrades import RegradeJobs
from app.services.sessions import session_user
from app.services.upload_checks import UploadChecks
from graders.course import CourseBank
from graders.engine import Grader
from graders.problem import ProblemBank

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def app_part(name: str) -> Callable[[Request], Any]:
    """A dependency that gives the part `create_app()` keeps on `app.state` under `name`."""
    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


SettingsDep = Annotated[Settings, Depends(app_part("settings"))]
SecretDep = Annotated[str, Depends(app_part("secret"))]
EngineDep = Annotated[Engine, Depends(app_part("engine"))]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(app_part("session_factory"))]
BankDep = Annotated[ProblemBank, Depends(app_part("bank"))]
CourseBankDep = Annotated[CourseBank, Depends(app_part("courses"))]
GraderDep = Annotated[Grader, Depends(app_part("grader"))]
DispatcherDep = Annotated[Dispatcher, Depends(app_part("dispatcher"))]
CompletionsDep = Annotated[Completions, Depends(app_part("completions"))]
RegradesDep = Annotated[RegradeJobs, Depends(app_part("regrades"))]
UploadChecksDep = Annotated[UploadChecks, Depends(app_part("upload_checks"))]
# Gradings the server runs at once (the in-process dispatcher's threads); None with queue workers (counted).
GradingSlotsDep = Annotated[int | None, Depends(app_part("grading_slots"))]
PreparationDep = Annotated[BankPreparation, Depends(app_part("preparation"))]
AuthGuardDep = Annotated[AuthGuard, Depends(app_part("auth_guard"))]
# Reachability of the queue's broker (None with in-process grading).
BrokerProbeDep = Annotated[BrokerProbe | None, Depends(app_part("broker_probe"))]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def get_session(factory: SessionFactoryDep) -> Iterator[Session]:
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def client_address(request: Request) -> str:
    """The client's address (the proxy's X-Forwarded-For when `gradax serve --proxy-headers` trusts it)."""
    return request.client.host if request.client is not None else "unknown"


def _unauthorized(detail: str) -> AppError:
    return AppError(401, detail, headers={"WWW-Authenticate": "Bearer"})


def get_optional_user(request: Request, session: SessionDep, token: TokenDep, secret: SecretDep) -> User | None:
    """The caller, or None when anonymous. A bad bearer token is an error, not anonymity.

    Its reads end their transaction before it returns, so the request's connection goes back to the pool while
    this thread still has it. Held on, a request keeps the connection while it waits for a thread for its next
    step; 300 long polls at once then held every connection while every request thread waited for one (30 s,
    then 500s). The session's objects stay loaded (expire_on_commit=False); a later query takes a connection
    again, inside the thread that runs it."""
    user = _authenticate(request, session, token, secret)
    session.commit()  # nothing is written here: this only ends the read transaction and returns the connection
    return user


def _authenticate(request: Request, session: Session, token: str | None, secret: str) -> User | None:
    if token is not None:
        claims = token_session(token, secret)
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
        raise AppError(403, f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")
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
        raise AppError(403, "instructors and admins only")
    return user


StaffUser = Annotated[User, Depends(get_staff_user)]
