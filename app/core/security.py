"""Passwords (argon2id), bearer tokens (JWT, HS256) and CSRF tokens for cookie sessions."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters (RFC 9106 low-memory profile)
# Verifying against this when the user does not exist keeps login timing the same either way.
_DUMMY_HASH = _hasher.hash("not a real password")


def configure_password_hashing(*, time_cost: int, memory_kib: int) -> None:
    """Set the argon2id cost (settings GRADAX_ARGON2_*). Existing hashes still verify and are upgraded at log in."""
    global _hasher, _DUMMY_HASH
    if (time_cost, memory_kib) != (_hasher.time_cost, _hasher.memory_cost):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def create_access_token(user_id: int, secret: str, minutes: int, *, session_id: str) -> str:
    """A signed bearer token for the server-side session `session_id` (app/services/sessions.py): the token is
    only good while that session exists, so logging out revokes it."""
    now = datetime.now(UTC)
    payload = {"sub": str(user_id), "sid": session_id, "iat": now, "exp": now + timedelta(minutes=minutes),
               "typ": "access"}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def token_session(token: str, secret: str) -> tuple[int, str] | None:
    """(user id, session id) of a validly signed, unexpired access token; None for anything else. Whether the
    session is still open is the caller's check."""
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "sid"]})
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access" or not isinstance(payload.get("sid"), str):
        return None
    try:
        return int(payload["sub"]), payload["sid"]
    except (TypeError, ValueError):
        return None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
