"""LTI Dynamic Registration against the fake LMS: an administrator's one-time URL registers the LMS (which can
then launch), and nothing else does: no key, a used or expired key, an issuer off the configuration's origin, or
an LMS that refuses the registration leave no platform behind (and the last two leave the key usable)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from http_tls import TLS
from sqlalchemy import select

from app.lti.models import LtiPlatform, LtiRegistration
from app.lti.registration import issue

from .conftest import Browser, GradaxServer
from .fake_platform import FakePlatform

PID = "nnx-module-basics"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@pytest.fixture
def new_lms(tool: GradaxServer) -> Iterator[FakePlatform]:
    """An LMS gradax has never heard of."""
    platform = FakePlatform(tool.url).start()
    yield platform
    platform.stop()


def _key(tool: GradaxServer, **kwargs: object) -> str:
    with tool.session() as session:
        return issue(session, **kwargs)  # type: ignore[arg-type]


def _open(tool: GradaxServer, lms: FakePlatform, key: str, token: str | None = None) -> httpx.Response:
    """What the LMS does with the pasted URL: open it with its configuration URL and a registration token."""
    params = {"key": key, "openid_configuration": lms.openid_configuration_url,
              "registration_token": lms.registration_token if token is None else token}
    return httpx.get(f"{tool.url}/lti/register", params=params, timeout=30, verify=TLS)


def _platforms(tool: GradaxServer, lms: FakePlatform) -> list[LtiPlatform]:
    with tool.session() as session:
        return list(session.scalars(select(LtiPlatform).where(LtiPlatform.issuer == lms.issuer)))


def test_a_one_time_url_registers_the_lms_which_can_then_launch(tool: GradaxServer, new_lms: FakePlatform) -> None:
    key = _key(tool, name="University LMS")
    r = _open(tool, new_lms, key)
    assert r.status_code == 200, r.text
    assert new_lms.client_id in r.text and "deployment-1" in r.text
    assert "lti-registered.js" in r.text  # the Finish button's postMessage to the LMS
    assert r.headers["content-security-policy"].endswith(f"frame-ancestors {new_lms.base}")
    # What gradax asked the LMS to register.
    (asked,) = new_lms.registrations
    assert asked["initiate_login_uri"] == tool.url + "/lti/login"
    assert asked["redirect_uris"] == [tool.url + "/lti/launch"] and asked["jwks_uri"] == tool.url + "/lti/jwks"
    assert asked["grant_types"] == ["implicit", "client_credentials"] and SCOPE_NRPS in asked["scope"].split()
    tool_config = asked["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert tool_config["messages"][0]["type"] == "LtiDeepLinkingRequest" and "email" in tool_config["claims"]
    # What gradax stored.
    (platform,) = _platforms(tool, new_lms)
    assert (platform.name, platform.client_id) == ("University LMS", new_lms.client_id)
    assert platform.auth_token_url == new_lms.base + "/token" and platform.jwks_url == new_lms.base + "/jwks"
    with tool.session() as session:
        stored = session.get(LtiPlatform, platform.id)
        assert stored is not None and [d.deployment_id for d in stored.deployments] == ["deployment-1"]
        invitation = session.scalar(select(LtiRegistration).where(LtiRegistration.platform_id == platform.id))
        assert invitation is not None and invitation.used_at is not None
        assert key not in invitation.key_hash  # only a hash of the key is kept
    # The registered LMS launches a student straight into a problem.
    sub = "d-" + secrets.token_hex(4)
    person = new_lms.person(sub, "Dora Dynamic", f"{sub}@uni.test", "Learner")
    browser = Browser(tool.url)
    try:
        link = new_lms.add_link("Basics", {"gradax_problem": PID})
        launched = browser.launch(new_lms.login_params(person, link=link))
        assert launched.status_code == 303 and launched.headers["location"] == f"/problems/{PID}", launched.text
    finally:
        browser.close()
    # The same URL again: used.
    again = _open(tool, new_lms, key)
    assert again.status_code == 400 and "used already" in again.text
    assert len(_platforms(tool, new_lms)) == 1


def test_nothing_registers_without_a_valid_key(tool: GradaxServer, new_lms: FakePlatform) -> None:
    for key, why in (("", "not one gradax issued"), ("made-up-" + secrets.token_hex(8), "not one gradax issued")):
        r = _open(tool, new_lms, key)
        assert r.status_code == 400 and why in r.text, r.text
    expired = _key(tool, lifetime=timedelta(seconds=1))
    time.sleep(1.2)
    r = _open(tool, new_lms, expired)
    assert r.status_code == 400 and "expired" in r.text
    assert new_lms.registrations == [] and _platforms(tool, new_lms) == []
    # Opened by hand, without the LMS's part: says what the URL is for.
    bare = httpx.get(f"{tool.url}/lti/register", params={"key": _key(tool)}, timeout=30, verify=TLS)
    assert bare.status_code == 400 and "Dynamic Registration" in bare.text


def test_a_refused_or_misconfigured_registration_leaves_the_key_usable(tool: GradaxServer,
                                                                       new_lms: FakePlatform) -> None:
    key = _key(tool)
    # An issuer on another origin than the configuration it came from: refused before anything is posted.
    new_lms.claimed_issuer = "https://lms.elsewhere.test"
    r = _open(tool, new_lms, key)
    assert r.status_code == 400 and "not on the origin" in r.text
    assert new_lms.registrations == []
    new_lms.claimed_issuer = None
    # The LMS refuses the registration (a stale registration token).
    r = _open(tool, new_lms, key, token="stale")
    assert r.status_code == 400 and "HTTP 401" in r.text
    assert _platforms(tool, new_lms) == []
    # Fixed on the LMS side: the same URL now works.
    assert _open(tool, new_lms, key).status_code == 200
    assert len(_platforms(tool, new_lms)) == 1


def test_the_cli_prints_a_registration_url(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GRADAX_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    cli = [str(Path(sys.executable).parent / "gradax"), "lti", "registration-url"]
    made = subprocess.run([*cli, "--url", "https://gradax.example.edu/", "--hours", "2", "--name", "Moodle"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith("https://gradax.example.edu/lti/register?key=") and len(url.split("key=")[1]) >= 40
    assert "One use, valid for 2 h" in made.stderr
    missing = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2 and "--url" in missing.stderr
