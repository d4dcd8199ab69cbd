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
# Verifying against this when the user does not exist keeps login timing the same either way. Made at the configured
# cost when an app configures hashing (so it is ready before the first log in), not at import: a hash at the default
# cost is ~0.2 CPU-s, which every process importing the app paid (each `gradax` command, worker and test process),
# and an app configured for another cost made a second one anyway.
_dummy_hash: str | None = None


def configure_password_hashing(*, time_cost: int, memory_kib: int, logins: bool = True) -> None:
    """Set the argon2id cost (settings GRADAX_ARGON2_*); for a process that serves log ins, make the dummy hash at
    that cost now. Existing hashes still verify and are upgraded at log in."""
    global _hasher, _dummy_hash
    if (time_cost, memory_kib) != (_hasher.time_cost, _hasher.memory_cost):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _dummy_hash = None
    if logins:
        _dummy()


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a real password")
    return _dummy_hash


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
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
