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
from app.lti.enrolment import map_context
from app.lti.launch import CLAIM_DEEP_LINKING, CLAIM_DEPLOYMENT, CLAIM_MESSAGE_TYPE, CLAIM_VERSION, Launch, LaunchError
from app.lti.links import CUSTOM_ASSIGNMENT, CUSTOM_POINTS, CUSTOM_PROBLEM
from app.lti.models import LtiContext, LtiDeepLinkRequest
from app.models import CourseRole, Problem, User, utcnow
from app.services.courses import courses_of, list_assignments

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
    """Assignments (of the LMS course's gradax course once mapped, else of the courses the instructor teaches),
    then every problem (its points in such an assignment, else one point)."""
    context = session.get(LtiContext, request.context_pk) if request.context_pk is not None else None
    user = session.get(User, request.user_id)
    if context is not None and context.course_id is not None:
        course_ids = [context.course_id]
    elif user is not None:
        course_ids = [c.id for c, role in courses_of(session, user) if role != CourseRole.STUDENT]
    else:
        course_ids = []
    out: list[Choice] = []
    problem_points: dict[str, float] = {}
    for course_id in course_ids:
        for a in list_assignments(session, course_id):
            out.append(Choice(f"assignment:{a.course_id}/{a.slug}", "assignment", f"{a.course_id}/{a.slug}", a.title,
                              a.max_points, f"course {a.course_id} · due {a.due:%Y-%m-%d %H:%M} UTC · "
                                            f"{len(a.problems)} problems"))
            for ref in a.problems:
                problem_points.setdefault(ref.problem_id, ref.points)
    problems = session.scalars(select(Problem).where(Problem.available.is_(True))
                               .order_by(Problem.track, Problem.order, Problem.id))
    out += [Choice(f"problem:{p.id}", "problem", p.id, p.title, problem_points.get(p.id, 1.0),
                   f"{p.track} · {p.difficulty}") for p in problems]
    return out


def response_jwt(session: Session, request: LtiDeepLinkRequest, choice: Choice, *, tool_url: str) -> str:
    """The signed LtiDeepLinkingResponse for one chosen item; marks the request used."""
    custom = {CUSTOM_PROBLEM if choice.kind == "problem" else CUSTOM_ASSIGNMENT: choice.target,
              CUSTOM_POINTS: f"{choice.points:g}"}
    if choice.kind == "assignment":
        course_id = choice.target.partition("/")[0]
        custom["gradax_course"] = course_id
        context = session.get(LtiContext, request.context_pk) if request.context_pk is not None else None
        map_context(session, context, course_id)
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
