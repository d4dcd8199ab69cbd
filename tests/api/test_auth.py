"""Accounts through the API: register, tokens, who am I, and every way authentication fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import API, PASSWORD, login, make_settings, register
from app.api.deps import get_optional_user
from app.main import create_app
from graders.problem import ProblemBank


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


def test_logout_revokes_the_bearer_token_on_the_server(client: TestClient) -> None:
    headers = register(client, "alice")
    other_device = login(client, "alice")
    r = client.post(f"{API}/auth/logout", headers=headers)
    assert r.status_code == 204
    r = client.get(f"{API}/auth/me", headers=headers)  # the same signed, unexpired token, kept by an attacker
    assert r.status_code == 401 and r.json()["detail"] == "invalid or expired token"
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 401
    assert client.get(f"{API}/auth/me", headers=other_device).json()["username"] == "alice"  # only that session


def test_tokens_without_a_server_side_session_are_401(client: TestClient) -> None:
    """A token signed with the real secret but naming no open session (made before sessions existed, or
    forged by someone who has the secret but not the database) does not authenticate."""
    register(client, "alice")
    secret = client.app.state.secret  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    for extra in ({}, {"sid": "made-up"}, {"sid": 7}):
        token = jwt.encode({"sub": "1", "exp": now + timedelta(hours=1), "typ": "access", **extra}, secret,
                           algorithm="HS256")
        r = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, extra


def test_log_in_is_limited_per_client_and_per_username(tmp_path: Path, data_dir: Path, bank: ProblemBank) -> None:
    settings = make_settings(tmp_path, data_dir, auth_rate_per_client=6, auth_rate_per_username=3)
    with TestClient(create_app(settings, bank=bank)) as client:
        register(client, "alice")  # 2 tries for alice (register, token)
        assert client.post(f"{API}/auth/token", data={"username": "alice", "password": "wrong!"}).status_code == 401
        r = client.post(f"{API}/auth/token", data={"username": "alice", "password": PASSWORD})
        assert r.status_code == 429 and "for this username" in r.json()["detail"]  # even the right password
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        r = client.post(f"{API}/auth/register", json={"username": "bobby", "password": PASSWORD})
        assert r.status_code == 201  # another username from the same client: 5 tries so far
        r = client.post(f"{API}/auth/token", data={"username": "bobby", "password": PASSWORD})
        assert r.status_code == 200
        r = client.post(f"{API}/auth/register", json={"username": "carol", "password": PASSWORD})
        assert r.status_code == 429 and "from this address" in r.json()["detail"]
        # The log in page says the same in words, without hashing anything.
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post("/login", data={"username": "bobby", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 429 and "too many log in" in r.text


def test_authentication_gives_its_database_connection_back_before_the_endpoint_runs(
        app: FastAPI, alice: dict[str, str]) -> None:
    """The caller's account is read, and the read's transaction ended, in the dependency's own thread: a request
    that then waits for a thread for its next step holds no connection. 300 long polls at once used to hold every
    connection of the pool while every request thread waited for one (tests/reliability/test_abuse.py)."""
    token = alice["Authorization"].removeprefix("Bearer ")
    with app.state.session_factory() as session:
        user = get_optional_user(request=None, session=session, token=token, secret=app.state.secret)  # type: ignore[arg-type]
        assert user is not None and user.username == "alice"
        assert not session.in_transaction()  # no transaction: no connection checked out of the pool
        assert user.id > 0 and not user.is_staff  # still loaded: reading it takes no connection
        assert not session.in_transaction()
