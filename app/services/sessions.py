"""Server-side sessions behind cookies and bearer tokens: opened at log in, checked on every request,
deleted at log out (so a copied cookie or token is dead afterwards, not only forgotten by the browser)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.models import AuthSession, utcnow

# How long a browser stays logged in (the signed cookie's max age too).
COOKIE_LIFETIME = timedelta(days=14)


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(*, session: Session, user_id: int, kind: str, lifetime: timedelta) -> str:
    """Store a new session and return the secret its holder presents (inside a signed cookie or token)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired rows of this user go at the same time: the table stays as small as the live sessions.
    session.execute(delete(AuthSession).where(AuthSession.user_id == user_id, AuthSession.expires_at < now))
    session.add(AuthSession(id=_key(secret), user_id=user_id, kind=kind, created_at=now, expires_at=now + lifetime))
    session.commit()
    return secret


def session_user(*, session: Session, secret: object) -> int | None:
    """The user id of a live session, or None (unknown, expired or logged out)."""
    if not isinstance(secret, str) or not secret:
        return None
    row = session.get(AuthSession, _key(secret))
    if row is None or row.expires_at < utcnow():
        return None
    return row.user_id


def close_session(*, session: Session, secret: object) -> None:
    if isinstance(secret, str) and secret:
        session.execute(delete(AuthSession).where(AuthSession.id == _key(secret)))
        session.commit()
