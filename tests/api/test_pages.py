"""Server-rendered pages and the browser's cookie session: CSRF on forms and JSON posts, escaping, redirects."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.helpers import API, PASSWORD, csrf_from, register

PID = "nnx-module-basics"
CODE = "def module_basics_forward(seed, x, features):\n    return x\n"


def browser_register(client: TestClient, username: str = "carol") -> str:
    """Register through the form like a browser; returns the CSRF token of the new session."""
    token = csrf_from(client.get("/register").text)
    r = client.post("/register", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                       "next": f"/problems/{PID}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/problems/{PID}"
    page = client.get(f"/problems/{PID}").text
    return csrf_from(page)


def test_problem_list_page_groups_by_track(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<h2>NNX basics</h2>" in r.text
    assert r.text.index("<h2>NNX basics</h2>") < r.text.index("<h2>Layers</h2>")  # the curriculum's order
    assert f'href="/problems/{PID}"' in r.text and "NNX module basics" in r.text
    assert 'class="badge easy"' in r.text
    assert "Log in" in r.text


def test_problem_page_renders_statement_signature_and_editor(client: TestClient) -> None:
    r = client.get(f"/problems/{PID}")
    assert r.status_code == 200
    assert "def module_basics_forward(seed, x, features):" in r.text
    assert "<h2>Why this matters</h2>" in r.text  # Markdown rendered
    assert 'id="editor"' in r.text and "/static/vendor/editor.js" in r.text
    assert "Log in to run and submit" in r.text


def test_unknown_problem_page_is_an_html_404(client: TestClient) -> None:
    r = client.get("/problems/no-such-problem", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"] and "There is no problem" in r.text


def test_static_assets_are_served(client: TestClient) -> None:
    for path in ("/static/vendor/editor.js", "/static/problem.js", "/static/app.css"):
        r = client.get(path)
        assert r.status_code == 200, path
    assert b"GradaxEditor" in client.get("/static/vendor/editor.js").content


def test_security_headers(client: TestClient) -> None:
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    # the interactive API docs need their inline script; they carry the other headers
    docs = client.get("/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert docs.headers["x-frame-options"] == "DENY"


def test_register_by_form_logs_in_with_an_httponly_samesite_cookie(client: TestClient) -> None:
    token = csrf_from(client.get("/register").text)
    r = client.post("/register", data={"username": "carol", "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "gradax_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/").text
    assert 'data-testid="username">carol' in page
    assert "You have solved 0 of" in page


def test_form_posts_without_the_csrf_token_are_403(client: TestClient) -> None:
    client.get("/register")
    r = client.post("/register", data={"username": "carol", "password": PASSWORD})
    assert r.status_code == 403
    r = client.post("/login", data={"username": "carol", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403


def test_cookie_json_posts_need_the_csrf_header(client: TestClient) -> None:
    token = browser_register(client)
    body = {"problem_id": PID, "code": CODE}
    r = client.post(f"{API}/submissions", json=body)
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    r = client.post(f"{API}/submissions", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = client.post(f"{API}/submissions", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 202
    # reads need no token
    assert client.get(f"{API}/submissions/{r.json()['id']}").status_code == 200


def test_bearer_requests_need_no_csrf_token(client: TestClient) -> None:
    headers = register(client, "dave")
    client.cookies.clear()
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE}, headers=headers)
    assert r.status_code == 202


def test_login_wrong_password_then_right_then_logout(client: TestClient) -> None:
    browser_register(client)
    token = csrf_from(client.get("/").text)
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert client.get(f"{API}/auth/me").status_code == 401
    token = csrf_from(client.get("/login").text)
    r = client.post("/login", data={"username": "carol", "password": "wrong password!", "csrf_token": token})
    assert r.status_code == 401 and "Wrong username or password." in r.text
    assert 'value="carol"' in r.text
    r = client.post("/login", data={"username": "carol", "password": PASSWORD, "csrf_token": token,
                                    "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/auth/me").json()["username"] == "carol"


def test_logout_needs_csrf(client: TestClient) -> None:
    browser_register(client)
    assert client.post("/logout", data={}).status_code == 403
    assert client.get(f"{API}/auth/me").status_code == 200


def test_login_never_redirects_off_site(client: TestClient) -> None:
    browser_register(client)
    token = csrf_from(client.get("/").text)
    client.post("/logout", data={"csrf_token": token})
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        token = csrf_from(client.get("/login").text)
        r = client.post("/login", data={"username": "carol", "password": PASSWORD, "csrf_token": token,
                                        "next": target}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", target
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/").text)})


def test_register_form_errors_are_shown(client: TestClient) -> None:
    register(client, "taken")
    for username, password, expected, status in (("taken", PASSWORD, "is taken", 409),
                                                  ("a", PASSWORD, "Usernames are 3-32", 422),
                                                  ("newbie", "short", "at least 8 characters", 422)):
        token = csrf_from(client.get("/register").text)
        r = client.post("/register", data={"username": username, "password": password, "csrf_token": token})
        assert r.status_code == status and expected in r.text


def test_code_and_drafts_are_escaped_in_the_page(client: TestClient) -> None:
    token = browser_register(client)
    evil = 'def f():\n    return "</script><script>alert(1)</script><img src=x onerror=alert(2)>"\n'
    r = client.put(f"{API}/problems/{PID}/draft", json={"code": evil}, headers={"X-CSRF-Token": token})
    assert r.status_code == 204
    page = client.get(f"/problems/{PID}").text
    assert "</script><script>alert(1)" not in page
    assert "<img src=x" not in page
    assert "\\u003c/script\\u003e" in page  # present, as inert JSON inside the config block


def test_progress_appears_on_the_list_page(client: TestClient) -> None:
    token = browser_register(client)
    client.post(f"{API}/submissions", json={"problem_id": PID, "code": CODE}, headers={"X-CSRF-Token": token})
    page = client.get("/").text
    item = page[page.index(f'data-problem="{PID}"'):]
    item = item[:item.index("</li>")]
    assert "1 attempt, best 0%" in item


def test_a_cookie_copied_before_logout_is_dead_after_it(client: TestClient) -> None:
    """Log out ends the session on the server: a copy of the cookie (another tab, a stolen cookie jar) does not
    bring it back."""
    browser_register(client)
    copied = client.cookies.get("gradax_session")
    assert copied and client.get(f"{API}/auth/me").json()["username"] == "carol"
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/").text)}, follow_redirects=False)
    client.cookies.set("gradax_session", copied)
    assert client.get(f"{API}/auth/me").status_code == 401
    assert "carol" not in client.get("/").text
