"""The tool's configuration for an LMS: Canvas's developer-key JSON, and Moodle's external-tool form fields.

Both say the same things: where the login, launch and key set are, that gradax wants deep linking (to pick
what to link), grade passback (line items and scores) and the roster (names and roles), and that it opens
in a new window (its session cookie is SameSite=Lax, which browsers do not send inside another site's frame).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from app.lti.services import SCOPE_LINEITEM, SCOPE_NRPS, SCOPE_SCORE

TITLE = "gradax"
DESCRIPTION = "Graded coding exercises for JAX and Flax NNX"
SCOPE_RESULT = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
LMS_NAMES = ("canvas", "moodle")


def urls(tool_url: str) -> dict[str, str]:
    return {"login": tool_url + "/lti/login", "launch": tool_url + "/lti/launch", "jwks": tool_url + "/lti/jwks",
            "deep_link": tool_url + "/lti/launch"}


def canvas(tool_url: str) -> dict[str, Any]:
    u = urls(tool_url)
    deep = {"message_type": "LtiDeepLinkingRequest", "target_link_uri": u["launch"], "windowTarget": "_blank"}
    return {
        "title": TITLE, "description": DESCRIPTION,
        "oidc_initiation_url": u["login"], "target_link_uri": u["launch"], "public_jwk_url": u["jwks"],
        "scopes": [SCOPE_LINEITEM, SCOPE_RESULT, SCOPE_SCORE, SCOPE_NRPS],
        "extensions": [{
            "domain": urlsplit(tool_url).hostname or "", "tool_id": "gradax", "platform": "canvas.instructure.com",
            "privacy_level": "public",  # name and email: accounts are linked by email across LMSs
            "settings": {"text": TITLE, "placements": [
                {"placement": "assignment_selection", **deep},
                {"placement": "link_selection", **deep},
            ]},
        }],
        "custom_fields": {},
    }


def moodle(tool_url: str) -> dict[str, Any]:
    """The values of Moodle's "Add external tool" form (Site administration > Plugins > External tool)."""
    u = urls(tool_url)
    return {
        "Tool name": TITLE, "Tool URL": u["launch"], "Tool description": DESCRIPTION, "LTI version": "LTI 1.3",
        "Public key type": "Keyset URL", "Public keyset": u["jwks"], "Initiate login URL": u["login"],
        "Redirection URI(s)": [u["launch"]], "Supports Deep Linking (Content-Item Message)": True,
        "Content Selection URL": u["deep_link"], "Default launch container": "New window",
        "Services": {"IMS LTI Assignment and Grade Services": "Use this service for grade sync and column management",
                     "IMS LTI Names and Role Provisioning": "Use this service to retrieve members' information "
                                                            "as per privacy settings",
                     "Tool Settings": "Do not use this service"},
        "Privacy": {"Share launcher's name with tool": "Always", "Share launcher's email with tool": "Always",
                    "Accept grades from the tool": "Always"},
    }


def tool_configuration(lms: str, tool_url: str) -> dict[str, Any]:
    if lms == "canvas":
        return canvas(tool_url)
    if lms == "moodle":
        return moodle(tool_url)
    raise ValueError(f"no configuration for {lms!r}; known: {', '.join(LMS_NAMES)}")
