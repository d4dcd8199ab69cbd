"""Calls to a platform's LTI Advantage services: OAuth2 tokens, AGS line items and scores, NRPS rosters.

Tokens come from the platform's token endpoint by the client-credentials grant with a JWT client assertion
signed by the tool's current key (IMS Security Framework 4.1); one token per platform and scope set is
kept until shortly before it expires. Every failure is a `ServiceError` whose message says what happened.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.lti.http import client
from app.lti.models import LtiPlatform

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
TOKEN_MARGIN_S = 30
MAX_PAGES = 200


class ServiceError(Exception):
    """A service call that failed; `retryable` is false for answers that will not change by themselves."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def _with_path(url: str, suffix: str) -> str:
    """`<lineitem>/scores` keeping the query string (some platforms put the line item id there)."""
    base, sep, query = url.partition("?")
    return base.rstrip("/") + "/" + suffix + (sep + query if sep else "")


def _link_next(response: httpx.Response) -> str | None:
    nxt = response.links.get("next")
    return nxt.get("url") if nxt else None


class PlatformServices:
    """Token cache and service calls for every platform; one instance per app, safe across threads."""

    def __init__(self, *, signing_key: Callable[[], RSAKey], timeout_s: float):
        self._signing_key = signing_key
        self.timeout_s = timeout_s
        self._tokens: dict[tuple[int, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    # -- tokens ----------------------------------------------------------------------------------

    def _assertion(self, platform: LtiPlatform) -> str:
        key = self._signing_key()
        now = int(time.time())
        claims = {"iss": platform.client_id, "sub": platform.client_id,
                  "aud": platform.token_audience or platform.auth_token_url,
                  "iat": now - 5, "exp": now + 300, "jti": secrets.token_urlsafe(24)}
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    def token(self, platform: LtiPlatform, scopes: list[str]) -> str:
        scope = " ".join(sorted(set(scopes)))
        cache_key = (platform.id, scope)
        with self._lock:
            cached = self._tokens.get(cache_key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        form = {"grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._assertion(platform), "scope": scope}
        body = self._json("POST", platform.auth_token_url, data=form, what="token request")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ServiceError(f"the platform's token endpoint answered without an access_token: {body!r:.200}")
        lifetime = body.get("expires_in", 3600)
        lifetime = float(lifetime) if isinstance(lifetime, int | float) else 3600.0
        with self._lock:
            self._tokens[cache_key] = (token, time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_S))
        return token

    def forget_token(self, platform: LtiPlatform) -> None:
        with self._lock:
            for key in [k for k in self._tokens if k[0] == platform.id]:
                del self._tokens[key]

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            with client(self.timeout_s) as http:
                response = http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"{what}: cannot reach {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            # 5xx, 408 and 429 pass; other 4xx (a line item deleted in the LMS, a student no longer enrolled)
            # will not fix themselves, but we still retry slowly so an instructor's fix in the LMS is picked up.
            retryable = response.status_code >= 500 or response.status_code in (401, 408, 429)
            raise ServiceError(f"{what}: {url} answered HTTP {response.status_code}: {response.text[:300]}",
                               retryable=retryable)
        return response

    def _json(self, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
        response = self._request(method, url, what=what, **kwargs)
        try:
            return response.json() if response.content else None
        except ValueError as exc:
            raise ServiceError(f"{what}: {url} did not answer JSON") from exc

    def _authorized(self, platform: LtiPlatform, scopes: list[str], method: str, url: str, *, what: str,
                    accept: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(platform, scopes)}", "Accept": accept,
                   **kwargs.pop("headers", {})}
        try:
            return self._request(method, url, what=what, headers=headers, **kwargs)
        except ServiceError as exc:
            if "HTTP 401" in str(exc):  # the token was revoked or expired early: one fresh token, one more try
                self.forget_token(platform)
                headers["Authorization"] = f"Bearer {self.token(platform, scopes)}"
                return self._request(method, url, what=what, headers=headers, **kwargs)
            raise

    # -- Assignment and Grade Services -----------------------------------------------------------

    def find_lineitem(self, platform: LtiPlatform, lineitems_url: str, *, resource_link_id: str,
                      tag: str) -> str | None:
        """The line item we made for this resource link earlier (found by its resource link and tag)."""
        sep = "&" if "?" in lineitems_url else "?"
        url: str | None = lineitems_url + sep + urlencode({"resource_link_id": resource_link_id, "tag": tag})
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._authorized(platform, [SCOPE_LINEITEM], "GET", url, what="line item lookup",
                                        accept=LINEITEMS_TYPE)
            items = response.json() if response.content else []
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get("tag") == tag and \
                        item.get("resourceLinkId", resource_link_id) == resource_link_id and item.get("id"):
                    return str(item["id"])
            url = _link_next(response)
        return None

    def create_lineitem(self, platform: LtiPlatform, lineitems_url: str, *, label: str, score_maximum: float,
                        resource_link_id: str, resource_id: str, tag: str) -> str:
        body = {"scoreMaximum": score_maximum, "label": label, "resourceLinkId": resource_link_id,
                "resourceId": resource_id, "tag": tag}
        response = self._authorized(platform, [SCOPE_LINEITEM], "POST", lineitems_url, what="line item creation",
                                    accept=LINEITEM_TYPE, json=body, headers={"Content-Type": LINEITEM_TYPE})
        created = response.json() if response.content else {}
        if not isinstance(created, dict) or not created.get("id"):
            raise ServiceError(f"line item creation: {lineitems_url} answered without an id")
        return str(created["id"])

    def post_score(self, platform: LtiPlatform, lineitem_url: str, *, user_id: str, score_given: float,
                   score_maximum: float, timestamp: datetime, comment: str | None = None) -> None:
        body: dict[str, Any] = {
            "userId": user_id, "scoreGiven": score_given, "scoreMaximum": score_maximum,
            "activityProgress": "Completed", "gradingProgress": "FullyGraded",
            # Platforms drop a score whose timestamp is not newer than the last one they took for this student.
            "timestamp": timestamp.isoformat(timespec="milliseconds") + "Z",
        }
        if comment:
            body["comment"] = comment
        self._authorized(platform, [SCOPE_SCORE], "POST", _with_path(lineitem_url, "scores"), what="score post",
                         accept="application/json", content=json.dumps(body).encode(),
                         headers={"Content-Type": SCORE_TYPE})

    # -- Names and Role Provisioning Services ----------------------------------------------------

    def members(self, platform: LtiPlatform, memberships_url: str) -> Iterator[dict[str, Any]]:
        """Every member of the context, following `Link: rel="next"` pages."""
        url: str | None = memberships_url
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._authorized(platform, [SCOPE_NRPS], "GET", url, what="roster request",
                                        accept=MEMBERSHIP_TYPE)
            body = response.json() if response.content else {}
            for member in body.get("members", []) if isinstance(body, dict) else []:
                if isinstance(member, dict):
                    yield member
            url = _link_next(response)

