"""Deep linking (LTI Deep Linking 2.0): an instructor picks a gradax assignment or problem in the LMS, and the
LMS gets a resource link to it with a line item (grade column) for its points.

The deep-linking launch is stored as a one-time request; the picker page (`GET /lti/deep-link`) shows what can
be linked; the choice (`POST /lti/deep-link`) becomes an `LtiDeepLinkingResponse` JWT signed with the tool's
current key, posted by the browser to the platform's `deep_link_return_url`. The link's target and points
travel in custom parameters, so every later launch of it says, signed by the platform, what it opens.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from joserfc import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti import keys
from app.lti.accounts import course_role
from app.lti.launch import CLAIM_DEEP_LINKING, CLAIM_DEPLOYMENT, CLAIM_MESSAGE_TYPE, CLAIM_VERSION, Launch, LaunchError
from app.lti.links import CUSTOM_ASSIGNMENT, CUSTOM_POINTS, CUSTOM_PROBLEM
from app.lti.models import LtiContext, LtiDeepLinkRequest
from app.models import Problem, User, utcnow

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
REQUEST_LIFETIME = timedelta(hours=1)
RESPONSE_LIFETIME_S = 300


@dataclass(frozen=True)
class Choice:
    """Something an instructor can link: `key` is "problem:<id>" or "assignment:<course>/<id>"."""

    key: str
    kind: str
    target: str
    title: str
    points: float
    detail: str = ""


def start_deep_link(session: Session, launch: Launch, user: User, context: LtiContext | None) -> str:
    """Store the deep-linking request; returns its id for the picker page. Only staff may link content."""
    if course_role(launch.roles) == "student":
        raise LaunchError("only instructors can add gradax content to a course", status_code=403)
    settings = launch.claim(CLAIM_DEEP_LINKING)
    accept = settings.get("accept_types") or ["ltiResourceLink"]
    if "ltiResourceLink" not in accept:
        raise LaunchError("this LMS placement does not accept LTI resource links, which is what gradax offers")
    data = settings.get("data")
    request = LtiDeepLinkRequest(
        id=secrets.token_urlsafe(24), platform_id=launch.platform.id, deployment_id=launch.deployment_id,
        user_id=user.id, context_pk=context.id if context is not None else None,
        return_url=str(settings["deep_link_return_url"]), data=data if isinstance(data, str) else None,
        accept_types=[str(a) for a in accept], expires_at=utcnow() + REQUEST_LIFETIME)
    session.add(request)
    session.commit()
    return request.id


def open_request(session: Session, request_id: str, user: User | None) -> LtiDeepLinkRequest:
    request = session.get(LtiDeepLinkRequest, request_id)
    if request is None or user is None or request.user_id != user.id:
        raise LaunchError("this content picker is not yours or does not exist; open it again from the LMS",
                          status_code=403)
    if request.used_at is not None:
        raise LaunchError("content was already picked for this request; open the picker again from the LMS",
                          status_code=409)
    if request.expires_at < utcnow():
        raise LaunchError("this content picker expired; open it again from the LMS", status_code=410)
    return request


def choices(session: Session, request: LtiDeepLinkRequest) -> list[Choice]:
    """Problems (one point each unless part of an assignment); assignments once courses exist."""
    problems = session.scalars(select(Problem).where(Problem.available.is_(True))
                               .order_by(Problem.track, Problem.order, Problem.id))
    return [Choice(f"problem:{p.id}", "problem", p.id, p.title, 1.0, f"{p.track} · {p.difficulty}")
            for p in problems]


def response_jwt(session: Session, request: LtiDeepLinkRequest, choice: Choice, *, tool_url: str) -> str:
    """The signed LtiDeepLinkingResponse for one chosen item; marks the request used."""
    custom = {CUSTOM_PROBLEM if choice.kind == "problem" else CUSTOM_ASSIGNMENT: choice.target,
              CUSTOM_POINTS: f"{choice.points:g}"}
    item = {
        "type": "ltiResourceLink", "title": choice.title, "url": tool_url + "/lti/launch", "custom": custom,
        # The platform makes the grade column from this; its URL comes back in every launch of the link.
        "lineItem": {"scoreMaximum": choice.points, "label": choice.title, "resourceId": choice.key,
                     "tag": "gradax"},
    }
    now = int(time.time())
    platform = request.platform
    claims = {
        "iss": platform.client_id, "aud": platform.issuer, "azp": platform.client_id, "iat": now,
        "exp": now + RESPONSE_LIFETIME_S, "nonce": secrets.token_urlsafe(16),
        CLAIM_DEPLOYMENT: request.deployment_id, CLAIM_MESSAGE_TYPE: "LtiDeepLinkingResponse",
        CLAIM_VERSION: "1.3.0", DL + "content_items": [item], DL + "msg": f"Linked {choice.title} from gradax",
    }
    if request.data is not None:
        claims[DL + "data"] = request.data
    key = keys.signing_key(session)
    request.used_at = utcnow()
    session.commit()
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
