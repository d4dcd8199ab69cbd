"""OIDC third-party login initiation and launch validation (LTI 1.3 core, IMS Security Framework 1.0).

The launch is two legs. The platform sends the browser to `/lti/login` (iss, login_hint, target_link_uri,
optionally lti_message_hint, client_id, lti_deployment_id); we store a one-time `state` with a fresh `nonce`
and send the browser to the platform's authorization endpoint. The platform posts an `id_token` (a JWT it
signed) and our `state` to `/lti/launch`, where `validate_launch`:
1. takes the state row, once (a second use of the same state fails: replay), unexpired;
2. checks the browser is the one that started the login (a cookie named after the state);
3. verifies the signature with the platform's published key (fetched and cached by key id), RS256 only;
4. checks iss (the platform the login was for), aud (our client id; with several audiences, azp too),
   exp and iat (60 s leeway), nonce (the one stored with this state: a token replayed with a new state fails);
5. checks the deployment id is registered, the LTI version and message type, and the claims that type needs.
Signature and claim checks are joserfc's; only the LTI-specific rules are written here.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jws import extract_compact
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from app.lti.http import PlatformKeyCache, PlatformUnreachable
from app.lti.models import LtiLoginState, LtiPlatform
from app.lti.platforms import find_platform, has_deployment
from app.models import utcnow

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_MESSAGE_TYPE = LTI + "message_type"
CLAIM_VERSION = LTI + "version"
CLAIM_DEPLOYMENT = LTI + "deployment_id"
CLAIM_TARGET = LTI + "target_link_uri"
CLAIM_RESOURCE_LINK = LTI + "resource_link"
CLAIM_ROLES = LTI + "roles"
CLAIM_CONTEXT = LTI + "context"
CLAIM_CUSTOM = LTI + "custom"
CLAIM_DEEP_LINKING = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"

STATE_LIFETIME = timedelta(minutes=10)
STATE_KEPT = timedelta(days=1)
CLOCK_LEEWAY_S = 60
STATE_COOKIE_PREFIX = "gradax-lti-"


class LaunchError(Exception):
    """A login or launch we refuse; the message says why (shown to the user, logged for the operator)."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def state_cookie_name(state: str) -> str:
    return STATE_COOKIE_PREFIX + state


@dataclass(frozen=True)
class LoginRedirect:
    url: str  # the platform's authorization endpoint with our request
    state: str


def initiate_login(session: Session, params: Mapping[str, str], *, redirect_uri: str) -> LoginRedirect:
    """Step one: check who is asking and build the authorization request (OIDC, response_mode=form_post)."""
    issuer = params.get("iss", "")
    login_hint = params.get("login_hint", "")
    target = params.get("target_link_uri", "")
    if not issuer or not login_hint or not target:
        raise LaunchError("an LTI login needs iss, login_hint and target_link_uri")
    platform = find_platform(session, issuer=issuer, client_id=params.get("client_id") or None)
    if platform is None:
        raise LaunchError(f"no LTI platform is registered for issuer {issuer!r}"
                          + (f" and client id {params['client_id']!r}" if params.get("client_id") else "")
                          + " (gradax lti add-platform)", status_code=403)
    deployment = params.get("lti_deployment_id")
    if deployment and not has_deployment(platform, deployment):
        raise LaunchError(f"deployment {deployment!r} is not registered for this platform "
                          "(gradax lti add-deployment)", status_code=403)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    # Spent and abandoned logins are kept a day (a replay is then still told "already used"), then dropped.
    session.execute(delete(LtiLoginState).where(LtiLoginState.expires_at < now - STATE_KEPT))
    session.add(LtiLoginState(state=state, nonce=nonce, platform_id=platform.id, target_link_uri=target[:2000],
                              created_at=now, expires_at=now + STATE_LIFETIME))
    session.commit()
    query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
             "client_id": platform.client_id, "redirect_uri": redirect_uri, "login_hint": login_hint,
             "state": state, "nonce": nonce}
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    sep = "&" if "?" in platform.auth_login_url else "?"
    return LoginRedirect(platform.auth_login_url + sep + urlencode(query), state)


@dataclass(frozen=True)
class Launch:
    """A validated launch: the platform and the id_token's claims."""

    platform: LtiPlatform
    claims: dict[str, Any]
    message_type: str
    deployment_id: str
    target_link_uri: str = ""
    roles: list[str] = field(default_factory=list)

    @property
    def sub(self) -> str:
        return str(self.claims.get("sub") or "")

    def claim(self, name: str) -> dict[str, Any]:
        value = self.claims.get(name)
        return value if isinstance(value, dict) else {}


def _take_state(session: Session, state: str) -> LtiLoginState:
    """The state row, marked used in the same statement that checks it was not (so only one launch gets it)."""
    now = utcnow()
    taken = session.execute(update(LtiLoginState)
                            .where(LtiLoginState.state == state, LtiLoginState.used_at.is_(None),
                                   LtiLoginState.expires_at > now)
                            .values(used_at=now))
    session.commit()
    row = session.get(LtiLoginState, state)
    if getattr(taken, "rowcount", 0) != 1 or row is None:
        if row is None:
            raise LaunchError("unknown login state: start the launch again from the LMS", status_code=403)
        if row.used_at is not None:
            raise LaunchError("this launch was already used (a replayed state or id_token); "
                              "start it again from the LMS", status_code=403)
        raise LaunchError("the login took too long and expired; start the launch again from the LMS",
                          status_code=403)
    return row


def validate_launch(session: Session, *, id_token: str, state: str, cookies: Mapping[str, str],
                    keys: PlatformKeyCache, now: float | None = None) -> Launch:
    """Validate the second leg of a launch (see the module docstring). Raises LaunchError."""
    if not id_token or not state:
        raise LaunchError("an LTI launch needs id_token and state (did the platform post the form?)")
    login = _take_state(session, state)
    if cookies.get(state_cookie_name(state)) != "1":
        raise LaunchError("this browser did not start this launch (the login cookie is missing): open the link "
                          "from the LMS again, in a new window if the LMS embeds gradax in a frame", status_code=403)
    platform = session.get(LtiPlatform, login.platform_id)
    if platform is None:
        raise LaunchError("the platform of this launch was removed", status_code=403)

    try:
        header = extract_compact(id_token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise LaunchError(f"the id_token is not a signed JWT: {exc}") from exc
    if header.get("alg") != "RS256":
        raise LaunchError(f"the id_token is signed with {header.get('alg')!r}; LTI 1.3 requires RS256")
    try:
        key = keys.key_for(platform.jwks_url, header.get("kid"))
    except KeyError as exc:
        raise LaunchError(f"bad signature: {exc.args[0]}", status_code=403) from exc
    except PlatformUnreachable as exc:
        raise LaunchError(str(exc), status_code=502) from exc
    try:
        token = jwt.decode(id_token, key, algorithms=["RS256"])
    except JoseError as exc:
        raise LaunchError(f"bad signature: the id_token does not verify with the platform's key ({exc})",
                          status_code=403) from exc
    claims = dict(token.claims)

    registry = jwt.JWTClaimsRegistry(
        now=int(now if now is not None else time.time()), leeway=CLOCK_LEEWAY_S,
        iss={"essential": True, "value": platform.issuer}, aud={"essential": True, "value": platform.client_id},
        exp={"essential": True}, iat={"essential": True}, nonce={"essential": True, "value": login.nonce})
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise LaunchError("the id_token has expired", status_code=403) from exc
    except MissingClaimError as exc:
        raise LaunchError(f"the id_token lacks required claims: {exc.description}", status_code=403) from exc
    except JoseError as exc:
        what = {"aud": "wrong audience: the id_token is not for this tool's client id",
                "nonce": "wrong nonce: the id_token was issued for another login (replayed?)",
                "iss": "wrong issuer: the id_token is not from the platform this login was for",
                "iat": "the id_token was issued in the future (clock skew?)"}
        message = what.get(getattr(exc, "claim", ""), f"invalid id_token: {exc.description}")
        raise LaunchError(message, status_code=403) from exc
    aud = claims["aud"]
    azp = claims.get("azp")
    if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (azp is not None and azp != platform.client_id):
        raise LaunchError("wrong authorized party (azp): the id_token is not for this tool's client id",
                          status_code=403)

    deployment = claims.get(CLAIM_DEPLOYMENT)
    if not isinstance(deployment, str) or not has_deployment(platform, deployment):
        raise LaunchError(f"unknown deployment {deployment!r} for this platform (gradax lti add-deployment)",
                          status_code=403)
    if claims.get(CLAIM_VERSION) != "1.3.0":
        raise LaunchError(f"unsupported LTI version {claims.get(CLAIM_VERSION)!r} (gradax speaks 1.3.0)")
    message_type = claims.get(CLAIM_MESSAGE_TYPE)
    if message_type == RESOURCE_LINK_REQUEST:
        link = claims.get(CLAIM_RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            raise LaunchError("a resource link launch needs the resource_link claim with an id")
    elif message_type == DEEP_LINKING_REQUEST:
        settings = claims.get(CLAIM_DEEP_LINKING)
        if not isinstance(settings, dict) or not settings.get("deep_link_return_url"):
            raise LaunchError("a deep linking launch needs deep_linking_settings with a deep_link_return_url")
    else:
        raise LaunchError(f"unsupported LTI message type {message_type!r}")
    if not claims.get("sub"):
        raise LaunchError("anonymous launches (no sub) are not supported: gradax grades a person")
    roles = claims.get(CLAIM_ROLES) or []
    if not isinstance(roles, list):
        raise LaunchError("the roles claim must be a list")
    target = claims.get(CLAIM_TARGET)
    return Launch(platform=platform, claims=claims, message_type=str(message_type), deployment_id=deployment,
                  target_link_uri=target if isinstance(target, str) else login.target_link_uri,
                  roles=[str(r) for r in roles])
