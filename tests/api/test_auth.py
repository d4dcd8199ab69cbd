"""Accounts through the API: register, tokens, who am I, and every way authentication fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from fastapi.testclient import TestClient

from api.helpers import API, PASSWORD, register


def test_register_returns_201_and_never_the_password_hash(client: TestClient) -> None:
    r = client.post(f"{API}/auth/register", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 201
    body = r.json()
    assert body["username"] == "alice" and body["role"] == "student"
    assert "password" not in r.text and "argon2" not in r.text


def test_passwords_are_stored_as_argon2id_hashes(client: TestClient) -> None:
    register(client, "alice")
    from app.models import User

    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        user = session.query(User).filter_by(username="alice").one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_register_duplicate_username_is_409(client: TestClient) -> None:
    register(client, "alice")
    r = client.post(f"{API}/auth/register", json={"username": "alice", "password": "another password"})
    assert r.status_code == 409
    assert "taken" in r.json()["detail"]


def test_register_rejects_bad_usernames_and_short_passwords_with_422(client: TestClient) -> None:
    for body in ({"username": "<script>", "password": PASSWORD}, {"username": "ab", "password": PASSWORD},
                 {"username": "carol", "password": "short"}, {"username": "carol"},
                 {"username": "carol", "password": PASSWORD, "role": "admin"}):
        r = client.post(f"{API}/auth/register", json=body)
        assert r.status_code == 422, body
        assert isinstance(r.json()["detail"], list)


def test_register_malformed_json_is_400(client: TestClient) -> None:
    r = client.post(f"{API}/auth/register", content=b'{"username": "alice", ',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["detail"]


def test_token_and_me(client: TestClient) -> None:
    headers = register(client, "alice")
    r = client.get(f"{API}/auth/me", headers=headers)
    assert r.status_code == 200
    assert r.json()["username"] == "alice"


def test_token_with_wrong_password_or_unknown_user_is_401(client: TestClient) -> None:
    register(client, "alice")
    for data in ({"username": "alice", "password": "wrong password"}, {"username": "nobody", "password": PASSWORD}):
        r = client.post(f"{API}/auth/token", data=data)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json() == {"detail": "wrong username or password"}


def test_token_without_form_fields_is_422(client: TestClient) -> None:
    assert client.post(f"{API}/auth/token", data={"username": "alice"}).status_code == 422


def test_me_without_credentials_is_401(client: TestClient) -> None:
    r = client.get(f"{API}/auth/me")
    assert r.status_code == 401
    assert "not authenticated" in r.json()["detail"]


def test_garbage_forged_and_expired_tokens_are_401(client: TestClient) -> None:
    register(client, "alice")
    secret = client.app.state.secret  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    wrong_key = "not the secret, but long enough for HS256 keys"
    forged = jwt.encode({"sub": "1", "exp": now + timedelta(hours=1), "typ": "access"}, wrong_key, algorithm="HS256")
    expired = jwt.encode({"sub": "1", "exp": now - timedelta(seconds=5), "typ": "access"}, secret, algorithm="HS256")
    unsigned = jwt.encode({"sub": "1", "exp": now + timedelta(hours=1), "typ": "access"}, None, algorithm="none")
    ghost = jwt.encode({"sub": "999", "exp": now + timedelta(hours=1), "typ": "access"}, secret, algorithm="HS256")
    for token in ("garbage", forged, expired, unsigned, ghost):
        r = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["detail"] == "invalid or expired token"
