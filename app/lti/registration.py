"""LTI Dynamic Registration 1.0 (IMS): an LMS registers gradax from one URL its administrator pastes.

1. A gradax administrator issues a one-time URL, `<tool>/lti/register?key=...` (`gradax lti registration-url`).
   Registering a platform is trusting it (its launches sign people in, and accounts are linked by email), so
   nothing registers without such a key: unknown, used or expired keys are refused before any outbound call.
2. The LMS opens the URL (in a frame or a window) with `openid_configuration` (its OpenID configuration URL)
   and usually `registration_token` (a bearer token for its registration endpoint) added.
3. gradax fetches the configuration and checks it: the issuer is on the configuration URL's origin, and the
   endpoints a tool needs are there. It posts its client registration (login, launch, key set, deep linking,
   the grade and roster scopes) and stores the platform under the client id and deployment id the LMS answers.
4. The page says what was registered; its Finish button tells the LMS (`postMessage` with subject
   `org.imsglobal.lti.close`), which closes the dialog.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.lti.config import DESCRIPTION, TITLE, urls
from app.lti.models import LtiPlatform, LtiRegistration
from app.lti.platforms import RegistrationError, add_platform
from app.lti.services import SCOPE_LINEITEM, SCOPE_NRPS, SCOPE_SCORE
from app.models import utcnow

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
SCOPE_RESULT = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
MAX_RESPONSE_BYTES = 256 * 1024
DEFAULT_LIFETIME = timedelta(days=3)
# The claims gradax reads from a launch: the account is linked by `sub`, else by email.
CLAIMS = ["iss", "sub", "name", "given_name", "family_name", "email"]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue(session: Session, *, name: str = "", created_by: str = "", lifetime: timedelta = DEFAULT_LIFETIME) -> str:
    """A new one-time registration key (the URL is `<tool>/lti/register?key=<key>`). Commits."""
    if lifetime <= timedelta(0):
        raise RegistrationError("a registration URL must live a while (give a positive lifetime)")
    key = secrets.token_urlsafe(32)
    session.add(LtiRegistration(key_hash=_digest(key), name=name.strip()[:200], created_by=created_by[:64],
                                expires_at=utcnow() + lifetime))
    session.commit()
    return key


def registration_url(tool_url: str, key: str) -> str:
    return f"{tool_url.rstrip('/')}/lti/register?key={key}"


def _claim(session: Session, key: str) -> LtiRegistration:
    """Take the key for this registration, or refuse it; another request with the same key now fails."""
    row = session.get(LtiRegistration, _digest(key)) if key else None
    if row is None:
        raise RegistrationError("this registration URL is not one gradax issued; ask for a new one "
                                "(gradax lti registration-url)")
    if row.used_at is not None:
        raise RegistrationError("this registration URL was used already; ask for a new one")
    if row.expires_at <= utcnow():
        raise RegistrationError("this registration URL has expired; ask for a new one")
    taken = session.execute(update(LtiRegistration).where(LtiRegistration.key_hash == row.key_hash,
                                                          LtiRegistration.used_at.is_(None))
                            .values(used_at=utcnow()))
    session.commit()
    if getattr(taken, "rowcount", 0) != 1:
        raise RegistrationError("this registration URL was used already; ask for a new one")
    return row


def _release(session: Session, row: LtiRegistration) -> None:
    """A registration that failed leaves the key usable (the administrator fixes the LMS side and retries)."""
    session.rollback()
    session.execute(update(LtiRegistration).where(LtiRegistration.key_hash == row.key_hash)
                    .values(used_at=None))
    session.commit()


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise RegistrationError(f"the LMS's {what} is larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        body = response.json()
    except ValueError as exc:
        raise RegistrationError(f"the LMS's {what} is not JSON") from exc
    if not isinstance(body, dict):
        raise RegistrationError(f"the LMS's {what} is not a JSON object")
    return body


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _http_url(value: object, name: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise RegistrationError(f"the LMS's OpenID configuration has no usable {name} ({value!r})")
    return value


def platform_configuration(http: httpx.Client, url: str) -> dict[str, Any]:
    """The LMS's OpenID configuration, checked: the issuer is on the URL's own origin, and the endpoints are there."""
    _http_url(url, "URL")
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise RegistrationError(f"the LMS's OpenID configuration could not be fetched: {exc}") from exc
    if response.status_code != 200:
        raise RegistrationError(f"the LMS's OpenID configuration answered HTTP {response.status_code}")
    config = _json(response, "OpenID configuration")
    issuer = config.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise RegistrationError("the LMS's OpenID configuration names no issuer")
    if _origin(issuer) != _origin(url):
        raise RegistrationError(f"the issuer {issuer!r} is not on the origin of its OpenID configuration "
                                f"({_origin(url)}): refused")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        _http_url(config.get(name), name)
    return config


def client_registration(tool_url: str, config: dict[str, Any]) -> dict[str, Any]:
    """What gradax asks the LMS to register (OpenID Connect Dynamic Client Registration + the LTI extension)."""
    u = urls(tool_url)
    offered = config.get("scopes_supported")
    wanted = [SCOPE_LINEITEM, SCOPE_RESULT, SCOPE_SCORE, SCOPE_NRPS]
    scopes = [s for s in wanted if not isinstance(offered, list) or s in offered]
    return {
        "application_type": "web", "response_types": ["id_token"], "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": u["login"], "redirect_uris": [u["launch"]], "client_name": TITLE,
        "jwks_uri": u["jwks"], "token_endpoint_auth_method": "private_key_jwt", "scope": " ".join(scopes),
        TOOL_CONFIGURATION: {
            "domain": urlsplit(tool_url).netloc, "target_link_uri": u["launch"], "description": DESCRIPTION,
            "claims": CLAIMS,
            "messages": [{"type": "LtiDeepLinkingRequest", "target_link_uri": u["launch"], "label": TITLE,
                          "placements": ["assignment_selection", "link_selection"]}],
        },
    }


def register(session: Session, http: httpx.Client, *, key: str, openid_configuration: str,
             registration_token: str, tool_url: str) -> LtiPlatform:
    """Run the whole registration for one request; the platform is stored (committed) when it returns."""
    invitation = _claim(session, key)
    try:
        config = platform_configuration(http, openid_configuration)
        headers = {"Accept": "application/json"}
        if registration_token:
            headers["Authorization"] = f"Bearer {registration_token}"
        try:
            response = http.post(str(config["registration_endpoint"]), json=client_registration(tool_url, config),
                                 headers=headers)
        except httpx.HTTPError as exc:
            raise RegistrationError(f"the LMS's registration endpoint could not be reached: {exc}") from exc
        if response.status_code not in (200, 201):
            raise RegistrationError(f"the LMS refused the registration: HTTP {response.status_code} "
                                    f"{response.text[:300]}")
        answer = _json(response, "registration answer")
        client_id = answer.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise RegistrationError("the LMS's registration answer has no client_id")
        tool = answer.get(TOOL_CONFIGURATION)
        deployment = tool.get("deployment_id") if isinstance(tool, dict) else None
        product = config.get(PLATFORM_CONFIGURATION)
        family = product.get("product_family_code") if isinstance(product, dict) else None
        audience = config.get("authorization_server")
        platform = add_platform(
            session, name=invitation.name or (f"{family} ({config['issuer']})" if family else str(config["issuer"])),
            issuer=str(config["issuer"]), client_id=client_id,
            auth_login_url=str(config["authorization_endpoint"]), auth_token_url=str(config["token_endpoint"]),
            jwks_url=str(config["jwks_uri"]), deployment_ids=[str(deployment)] if deployment else [],
            token_audience=audience if isinstance(audience, str) and audience else None)
    except Exception:  # refused, or gradax failed: either way the administrator may try the same URL again
        _release(session, invitation)
        raise
    session.execute(update(LtiRegistration).where(LtiRegistration.key_hash == invitation.key_hash)
                    .values(platform_id=platform.id))
    session.commit()
    return platform
