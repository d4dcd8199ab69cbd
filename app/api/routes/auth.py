"""Accounts: register, OAuth2 password-flow tokens, who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.core.security import create_access_token
from app.schemas import Token, UserCreate, UserPublic
from app.services.users import authenticate, create_user

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=UserPublic)
def register_user(body: UserCreate, session: SessionDep) -> UserPublic:
    """Create a student account."""
    return UserPublic.model_validate(create_user(session=session, username=body.username, password=body.password))


@router.post("/token", response_model=Token)
def login_access_token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request,
                       session: SessionDep, settings: SettingsDep) -> Token:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    user = authenticate(session=session, username=form.username, password=form.password)
    if user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    return Token(access_token=create_access_token(user.id, request.app.state.secret, settings.access_token_minutes))


@router.get("/me", response_model=UserPublic)
def read_me(user: CurrentUser) -> UserPublic:
    """The caller's account."""
    return UserPublic.model_validate(user)
