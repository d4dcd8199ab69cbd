"""What a launch points at: the platform's context (course) and resource link, kept up to date per launch.

A resource link made by gradax's deep linking carries its target in custom parameters (`gradax_problem` or
`gradax_assignment`), which arrive signed inside the id_token. A link an instructor typed by hand may point
its target_link_uri at a problem page (https://gradax.example.edu/problems/nnx-mlp) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti.launch import CLAIM_AGS, CLAIM_CONTEXT, CLAIM_CUSTOM, CLAIM_NRPS, CLAIM_RESOURCE_LINK, Launch
from app.lti.models import LtiContext, LtiResourceLink
from app.models import utcnow

CUSTOM_PROBLEM = "gradax_problem"
CUSTOM_ASSIGNMENT = "gradax_assignment"
CUSTOM_POINTS = "gradax_points"


@dataclass(frozen=True)
class Target:
    kind: str  # "problem" or "assignment"
    id: str


def target_of(launch: Launch) -> Target | None:
    custom = launch.claim(CLAIM_CUSTOM)
    if isinstance(custom.get(CUSTOM_ASSIGNMENT), str) and custom[CUSTOM_ASSIGNMENT]:
        return Target("assignment", custom[CUSTOM_ASSIGNMENT])
    if isinstance(custom.get(CUSTOM_PROBLEM), str) and custom[CUSTOM_PROBLEM]:
        return Target("problem", custom[CUSTOM_PROBLEM])
    path = urlsplit(launch.target_link_uri).path
    if path.startswith("/problems/") and path.count("/") == 2 and len(path) > len("/problems/"):
        return Target("problem", path.removeprefix("/problems/"))
    return None


def record_context(session: Session, launch: Launch) -> LtiContext | None:
    """The launch's context row (created on first sight), with the latest title and roster URL."""
    claim = launch.claim(CLAIM_CONTEXT)
    context_id = claim.get("id")
    if not isinstance(context_id, str) or not context_id:
        return None
    context = session.scalar(select(LtiContext).where(LtiContext.platform_id == launch.platform.id,
                                                      LtiContext.context_id == context_id))
    if context is None:
        context = LtiContext(platform_id=launch.platform.id, context_id=context_id)
        session.add(context)
    context.title = str(claim.get("title") or context.title or context_id)[:200]
    context.label = str(claim.get("label") or context.label or "")[:200]
    context.deployment_id = launch.deployment_id
    nrps = launch.claim(CLAIM_NRPS).get("context_memberships_url")
    if isinstance(nrps, str) and nrps:
        context.memberships_url = nrps
    session.flush()
    return context


def record_resource_link(session: Session, launch: Launch, context: LtiContext | None,
                         target: Target) -> LtiResourceLink:
    """The resource link row for a resource launch, with the grade service endpoints this launch offers."""
    claim = launch.claim(CLAIM_RESOURCE_LINK)
    link_id = str(claim["id"])
    link = session.scalar(select(LtiResourceLink).where(LtiResourceLink.platform_id == launch.platform.id,
                                                        LtiResourceLink.resource_link_id == link_id))
    if link is None:
        link = LtiResourceLink(platform_id=launch.platform.id, resource_link_id=link_id, ags_scopes=[])
        session.add(link)
    link.context_pk = context.id if context is not None else link.context_pk
    link.deployment_id = launch.deployment_id
    link.title = str(claim.get("title") or link.title or target.id)[:200]
    link.target_kind, link.target = target.kind, target.id
    points = launch.claim(CLAIM_CUSTOM).get(CUSTOM_POINTS)
    try:
        link.score_maximum = float(points) if points is not None else link.score_maximum
    except (TypeError, ValueError):
        pass
    ags = launch.claim(CLAIM_AGS)
    if ags:
        # The platform's line item (made by it from our deep link's lineItem) wins over one we created.
        if isinstance(ags.get("lineitem"), str) and ags["lineitem"]:
            link.lineitem_url = ags["lineitem"]
        if isinstance(ags.get("lineitems"), str) and ags["lineitems"]:
            link.lineitems_url = ags["lineitems"]
        scopes = ags.get("scope")
        if isinstance(scopes, list):
            link.ags_scopes = [str(s) for s in scopes]
    link.updated_at = utcnow()
    session.flush()
    return link
