"""`gradax lti ...` through the real console script, and the tool's key set: published, rotated, used."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from http_tls import TLS
from joserfc import jwt
from joserfc.jwk import KeySet

from app.lti import keys
from app.lti.config import tool_configuration
from app.lti.platforms import RegistrationError, add_deployment, add_platform, remove_deployment
from lti.conftest import GradaxServer
from lti.fake_platform import FakePlatform


@pytest.mark.slow  # every `gradax` run imports the app: seconds each on a busy machine
def test_cli_registers_a_platform_and_prints_configuration(gradax, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"GRADAX_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    platform = FakePlatform("https://gradax.example.edu")
    platform.base = "https://lms.example.edu"
    r = gradax("lti", "add-platform", *platform.registration_args(), env=env)
    assert r.returncode == 0, r.stderr
    assert "registered platform 1" in r.stdout
    again = gradax("lti", "add-platform", *platform.registration_args(), env=env)
    assert again.returncode == 2 and "already registered" in again.stderr
    assert gradax("lti", "add-deployment", platform.issuer, "deployment-2", env=env).returncode == 0
    listed = gradax("lti", "list", "--json", env=env).json()
    assert listed[0]["issuer"] == "https://lms.example.edu" and listed[0]["client_id"] == platform.client_id
    assert listed[0]["deployment_ids"] == ["deployment-1", "deployment-2"]

    canvas = json.loads(gradax("lti", "config", "canvas", "--url", "https://gradax.example.edu", env=env).stdout)
    assert canvas["oidc_initiation_url"] == "https://gradax.example.edu/lti/login"
    assert canvas["public_jwk_url"] == "https://gradax.example.edu/lti/jwks"
    placements = canvas["extensions"][0]["settings"]["placements"]
    assert {p["message_type"] for p in placements} == {"LtiDeepLinkingRequest"}

    rotated = gradax("lti", "keys", "rotate", env=env)
    assert rotated.returncode == 0 and "signs from" in rotated.stdout, rotated.stderr
    published = gradax("lti", "jwks", env=env).json()["keys"]
    assert len(published) == 2 and all(k["kty"] == "RSA" and "d" not in k for k in published)  # public parts only


def test_registration_refuses_bad_input(tmp_path: Path) -> None:
    from app.db import make_engine, make_session_factory
    from app.migrate import upgrade_to_head

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade_to_head(engine)
    with make_session_factory(engine)() as session:
        with pytest.raises(RegistrationError, match="auth login URL must be an http"):
            add_platform(session, name="", issuer="x", client_id="y", auth_login_url="not a url",
                         auth_token_url="https://t", jwks_url="https://j", deployment_ids=[])
        p = add_platform(session, name="", issuer="https://i", client_id="y", auth_login_url="https://a",
                         auth_token_url="https://t", jwks_url="https://j", deployment_ids=["d1", "d1"])
        assert [d.deployment_id for d in p.deployments] == ["d1"]
        assert not add_deployment(session, p, "d1") and remove_deployment(session, p, "d1")
        assert not remove_deployment(session, p, "d1")
        keys.ensure_key(session)
        with pytest.raises(ValueError, match="only key"):
            keys.retire(session, keys.statuses(session)[0].kid)
    engine.dispose()
    moodle = tool_configuration("moodle", "https://g.test")
    assert moodle["Initiate login URL"] == "https://g.test/lti/login" and moodle["LTI version"] == "LTI 1.3"
    with pytest.raises(ValueError, match="known: canvas, moodle"):
        tool_configuration("blackboard", "https://g.test")


def test_jwks_endpoint_serves_the_keys_and_rotation_is_staged(tool: GradaxServer, lms: FakePlatform) -> None:
    served = httpx.get(tool.url + "/lti/jwks", timeout=30, verify=TLS).json()
    with tool.session() as session:
        signing = keys.signing_key(session)
        assert [k["kid"] for k in served["keys"]] == [signing.kid]
        assert all(set(k) >= {"kty", "n", "e", "kid", "alg", "use"} and "d" not in k for k in served["keys"])
        # A token we sign verifies with the published set (what a platform does).
        token = jwt.encode({"alg": "RS256", "kid": signing.kid}, {"x": 1}, signing)
        assert jwt.decode(token, KeySet.import_key_set(served), algorithms=["RS256"]).claims == {"x": 1}

        staged = keys.rotate(session, publish_ahead=timedelta(hours=1))
        published = [k["kid"] for k in httpx.get(tool.url + "/lti/jwks", timeout=30, verify=TLS).json()["keys"]]
        assert published == [signing.kid, staged.kid]  # the new key is published before it signs
        assert keys.signing_key(session).kid == signing.kid

        now = keys.rotate(session, publish_ahead=timedelta(0))
        assert keys.signing_key(session).kid == now.kid
        statuses = {s.kid: s.status for s in keys.statuses(session)}
        assert statuses == {signing.kid: "previous", staged.kid: "next", now.kid: "signing"}
        # The platform's token endpoint verifies our client assertion against /lti/jwks: with the new key too.
        assert tool.app is not None
        services = tool.app.state.lti_passback.services
        from app.lti.models import LtiPlatform
        from app.lti.platforms import find_platform

        platform = find_platform(session, issuer=lms.issuer, client_id=lms.client_id)
        assert isinstance(platform, LtiPlatform)
        services.forget_token(platform)
        assert services.token(platform, ["https://purl.imsglobal.org/spec/lti-ags/scope/score"])
        # Superseded a day ago: no longer published.
        assert statuses[signing.kid] == "previous"
        later = {s.kid: s.status for s in keys.statuses(session, now=now.activates_at + timedelta(days=2))}
        assert later[signing.kid] == "expired"
