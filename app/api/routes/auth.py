"""Accounts: register, OAuth2 password-flow tokens, log out, who am I.

Registration and log in pass the auth guard (app/core/throttle.py) before any password is hashed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from app.api.deps import AuthGuardDep, CurrentUser, SecretDep, SessionDep, SettingsDep, TokenDep, client_address
from app.core.security import create_access_token, token_session
from app.errors import AppError
from app.schemas import Token, UserCreate, UserPublic
from app.services.sessions import close_session, open_session
from app.services.users import authenticate, check_registration, create_user

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=UserPublic)
async def register_user(body: UserCreate, request: Request, session: SessionDep, settings: SettingsDep,
                        guard: AuthGuardDep) -> UserPublic:
    """Create a student account (403 where GRADAX_REGISTRATION does not allow it)."""
    guard.check(client=client_address(request), username=body.username)
    await run_in_threadpool(lambda: check_registration(
        session=session, registration=settings.registration, username=body.username, invitation=body.invitation))
    user = await guard.hashing(lambda: create_user(session=session, username=body.username, password=body.password,
                                                     email=body.email, invitation=body.invitation))
    return UserPublic.model_validate(user)


@router.post("/token", response_model=Token)
async def login_access_token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request,
                             session: SessionDep, settings: SettingsDep, secret: SecretDep,
                             guard: AuthGuardDep) -> Token:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    guard.check(client=client_address(request), username=form.username)
    user = await guard.hashing(lambda: authenticate(session=session, username=form.username, password=form.password))
    if user is None:
        raise AppError(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    minutes = settings.access_token_minutes
    sid = await run_in_threadpool(lambda: open_session(session=session, user_id=user.id, kind="token",
                                                       lifetime=timedelta(minutes=minutes)))
    return Token(access_token=create_access_token(user.id, secret, minutes, session_id=sid))


@router.post("/logout", status_code=204)
def logout(request: Request, session: SessionDep, user: CurrentUser, token: TokenDep, secret: SecretDep) -> Response:
    """End the caller's session on the server: the bearer token (or the session cookie) stops working."""
    if token is not None:
        claims = token_session(token, secret)
        if claims is not None:
            close_session(session=session, secret=claims[1])
    else:
        close_session(session=session, secret=request.session.get("sid"))
        request.session.clear()
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic)
def read_me(user: CurrentUser) -> UserPublic:
    """The caller's account."""
    return UserPublic.model_validate(user)
