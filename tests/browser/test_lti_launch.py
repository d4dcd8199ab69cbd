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
