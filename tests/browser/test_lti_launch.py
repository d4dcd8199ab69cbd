"""An LMS page whose launch form auto-posts into gradax (`gradax serve`, Debian's Chromium): the student lands on
the linked problem, logged in. The LMS (a fake LTI 1.3 platform on loopback, tests/lti/fake_platform.py) is
"localhost" and gradax "127.0.0.1": two sites, so the platform's form post is cross-site and only the
SameSite=None state cookie comes along, as with a real LMS on its own domain."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from lti.fake_platform import FakePlatform
from sqlalchemy import select

from app.db import make_engine, make_session_factory
from app.lti.models import LtiUserLink
from app.lti.platforms import add_platform
from app.models import User

PID = "nnx-module-basics"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_lms_launch_form_lands_the_student_on_the_problem_logged_in(server: str, browser, artifacts: Path,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path) -> None:
    lms = FakePlatform(server, host="localhost").start()
    engine = make_engine(f"sqlite:///{tmp_path / 'browser.db'}")  # the database `server` runs on
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:  # what `gradax lti add-platform` does
            add_platform(session, name="Fake LMS", issuer=lms.issuer, client_id=lms.client_id,
                         auth_login_url=lms.base + "/auth", auth_token_url=lms.base + "/token",
                         jwks_url=lms.base + "/jwks", deployment_ids=[lms.deployment_id])
        student = lms.person("b-" + secrets.token_hex(3), "Bo Browser", "bo@uni.test", "Learner")
        link = lms.add_link("Module basics", {"gradax_problem": PID}, with_lineitem=True)
        course_page = lms.publish_launch_page(lms.login_params(student, link=link))
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # LMS page -> POST /lti/login -> LMS /auth -> auto-posted id_token to /lti/launch -> the problem
        page.goto(course_page)
        page.wait_for_url(f"{server}/problems/{PID}", timeout=60_000)
        page.wait_for_selector(".cm-editor")
        with sessions() as session:
            user_id = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == student.sub))
            user = session.get(User, user_id)
            assert user is not None
        assert page.locator("[data-testid=username]").inner_text() == user.username
        assert page.locator("#submit-button").is_enabled()
        page.screenshot(path=str(artifacts / "lti-launch-lands-on-problem.png"), full_page=True)
        assert errors == []
        context.close()
    finally:
        lms.stop()
        engine.dispose()


def test_a_student_who_registered_before_keeps_that_account_by_its_password(server: str, browser,  # type: ignore[no-untyped-def]
                                                                            artifacts: Path, tmp_path: Path) -> None:
    """Her first launch asks whether the account that registered her email earlier is hers; its password (typed in
    the page, in Chromium) signs the LMS in to it, and she lands on the problem as that account."""
    import httpx

    lms = FakePlatform(server, host="localhost").start()
    engine = make_engine(f"sqlite:///{tmp_path / 'browser.db'}")
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            add_platform(session, name="Fake LMS", issuer=lms.issuer, client_id=lms.client_id,
                         auth_login_url=lms.base + "/auth", auth_token_url=lms.base + "/token",
                         jwks_url=lms.base + "/jwks", deployment_ids=[lms.deployment_id])
        sub = "e-" + secrets.token_hex(3)
        username, password = "eve-" + sub[2:], "eve's long password"
        r = httpx.post(f"{server}/api/v1/auth/register", verify=False,
                       json={"username": username, "password": password, "email": f"{sub}@uni.test"})
        assert r.status_code == 201, r.text
        student = lms.person(sub, "Eve Earlier", f"{sub}@uni.test", "Learner")
        link = lms.add_link("Module basics", {"gradax_problem": PID}, with_lineitem=True)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(lms.publish_launch_page(lms.login_params(student, link=link)))
        page.wait_for_url(f"{server}/lti/link-account", timeout=60_000)
        assert page.locator("[data-testid=holder]").inner_text() == username
        page.screenshot(path=str(artifacts / "lti-link-account.png"), full_page=True)
        page.fill("#link-password", password)
        page.click("#link-submit")
        page.wait_for_url(f"{server}/problems/{PID}", timeout=60_000)
        page.wait_for_selector(".cm-editor")
        assert page.locator("[data-testid=username]").inner_text() == username
        with sessions() as session:
            linked = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub))
            assert linked == r.json()["id"]
        assert errors == []
        context.close()
    finally:
        lms.stop()
        engine.dispose()
