"""A real (fake) LTI 1.3 platform: an HTTP server on loopback, written with joserfc, that the tests launch
gradax from, exactly as an LMS does.

It serves its key set, runs the OIDC authorization leg (checks the tool's request, signs an id_token and
answers with the auto-posting form), issues service tokens only for client assertions that verify against
the tool's published key set (fetched from gradax's /lti/jwks), keeps AGS line items and the scores posted to
them, serves a Names and Roles roster (two members per page), takes deep-linking responses (verified the
same way) and turns their content items into resource links with line items, as Canvas and Moodle do.
`down = True` makes every service endpoint answer 503, like a platform in maintenance.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
          "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
          "https://purl.imsglobal.org/spec/lti-ags/scope/score",
          "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]


@dataclass
class Person:
    sub: str
    name: str
    email: str
    role: str  # "Learner", "Instructor", or a full role URI


@dataclass
class ResourceLink:
    id: str
    title: str
    custom: dict[str, str]
    lineitem_id: str | None


@dataclass
class LaunchIntent:
    """What the next authorization for a login hint should produce; tests may tamper with the claims."""

    person: Person
    message_type: str
    link: ResourceLink | None
    overrides: dict[str, Any] = field(default_factory=dict)
    sign_with: RSAKey | None = None


class FakePlatform:
    def __init__(self, tool_url: str = "", *, context_id: str = "course-101", context_title: str = "Deep Learning 101",
                 host: str = "127.0.0.1"):
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
        self.kid = self.key.thumbprint()
        self.tool_url = tool_url
        self.client_id = "gradax-client-" + secrets.token_hex(3)
        self.deployment_id = "deployment-1"
        self.context_id, self.context_title = context_id, context_title
        self.people: dict[str, Person] = {}
        self.links: dict[str, ResourceLink] = {}
        self.lineitems: dict[str, dict[str, Any]] = {}
        self.scores: list[dict[str, Any]] = []  # every score post, in order
        self.deep_link_items: list[dict[str, Any]] = []
        self.pages: dict[str, str] = {}
        self.intents: dict[str, LaunchIntent] = {}
        self.tokens: dict[str, list[str]] = {}
        self.token_requests = 0
        self.down = False
        self.failed_calls = 0
        # Dynamic Registration: the bearer token the LMS hands the tool, the requests it received, and an issuer
        # to claim in its OpenID configuration instead of its own (a misconfigured or hostile LMS).
        self.registration_token = "reg-" + secrets.token_hex(8)
        self.registrations: list[dict[str, Any]] = []
        self.claimed_issuer: str | None = None
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.base = ""
        self.host = host  # the name the LMS is reached by ("localhost" makes it another site than 127.0.0.1)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakePlatform:
        platform = self

        class Handler(_Handler):
            owner = platform

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.base = f"http://{self.host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="fake-lms", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def issuer(self) -> str:
        return self.base

    @property
    def openid_configuration_url(self) -> str:
        return self.base + "/.well-known/openid-configuration"

    def openid_configuration(self) -> dict[str, Any]:
        """What the LMS publishes for Dynamic Registration (OpenID Connect Discovery + the LTI platform part)."""
        return {"issuer": self.claimed_issuer or self.issuer, "authorization_endpoint": self.base + "/auth",
                "token_endpoint": self.base + "/token", "jwks_uri": self.base + "/jwks",
                "registration_endpoint": self.base + "/register", "scopes_supported": ["openid", *SCOPES],
                "response_types_supported": ["id_token"], "id_token_signing_alg_values_supported": ["RS256"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": "fake-lms", "version": "1.0",
                    "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}]}}

    def registration_args(self) -> list[str]:
        """`gradax lti add-platform` arguments for this platform."""
        return ["--issuer", self.issuer, "--client-id", self.client_id, "--auth-login-url", self.base + "/auth",
                "--auth-token-url", self.base + "/token", "--jwks-url", self.base + "/jwks",
                "--deployment-id", self.deployment_id, "--name", "Fake LMS"]

    # -- what a person does in the LMS ------------------------------------------------------------

    def person(self, sub: str, name: str, email: str, role: str) -> Person:
        self.people[sub] = Person(sub, name, email, role)
        return self.people[sub]

    def add_link(self, title: str, custom: dict[str, str], *, with_lineitem: bool = False,
                 points: float = 1.0) -> ResourceLink:
        """A resource link created in the LMS (not through deep linking)."""
        link = ResourceLink("rl-" + secrets.token_hex(4), title, custom, None)
        if with_lineitem:
            link.lineitem_id = self._new_lineitem({"label": title, "scoreMaximum": points,
                                                   "resourceLinkId": link.id})
        self.links[link.id] = link
        return link

    def login_params(self, person: Person, message_type: str = "LtiResourceLinkRequest",
                     link: ResourceLink | None = None, **overrides: Any) -> dict[str, str]:
        """The third-party login initiation the LMS sends to the tool for this person clicking this link."""
        hint = secrets.token_urlsafe(8)
        sign_with = overrides.pop("sign_with", None)
        self.intents[hint] = LaunchIntent(person, message_type, link, overrides, sign_with)
        return {"iss": self.issuer, "login_hint": person.sub, "lti_message_hint": hint,
                "target_link_uri": self.tool_url + "/lti/launch", "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id}

    def launch_page(self, params: dict[str, str]) -> str:
        """The LMS page whose form auto-posts the login initiation into the tool (the browser test's start)."""
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items())
        return (f'<!doctype html><html><body><h1>Fake LMS: {html.escape(self.context_title)}</h1>'
                f'<form id="launch" method="post" action="{self.tool_url}/lti/login">{inputs}'
                '<button type="submit">Open in gradax</button></form>'
                '<script>document.getElementById("launch").submit()</script></body></html>')

    def publish_launch_page(self, params: dict[str, str]) -> str:
        """Serve `launch_page(params)` at a fresh URL of this platform, as an LMS course page would be."""
        name = secrets.token_urlsafe(8)
        self.pages[name] = self.launch_page(params)
        return f"{self.base}/lms/{name}"

    def scores_for(self, sub: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.scores if s["userId"] == sub]

    # -- building messages -----------------------------------------------------------------------

    def id_token(self, intent: LaunchIntent, nonce: str) -> str:
        now = int(time.time())
        p = intent.person
        role = p.role if "://" in p.role else ROLE + p.role
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "sub": p.sub, "iat": now, "exp": now + 300, "nonce": nonce,
            "name": p.name, "email": p.email, "given_name": p.name.split()[0],
            LTI + "message_type": intent.message_type, LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id, LTI + "target_link_uri": self.tool_url + "/lti/launch",
            LTI + "roles": [role],
            LTI + "context": {"id": self.context_id, "label": "DL101", "title": self.context_title},
            NRPS: {"context_memberships_url": f"{self.base}/memberships/{self.context_id}",
                   "service_versions": ["2.0"]},
        }
        if intent.message_type == "LtiResourceLinkRequest":
            assert intent.link is not None
            link = intent.link
            claims[LTI + "resource_link"] = {"id": link.id, "title": link.title}
            claims[LTI + "custom"] = dict(link.custom)
            ags: dict[str, Any] = {"scope": SCOPES, "lineitems": f"{self.base}/lineitems"}
            if link.lineitem_id:
                ags["lineitem"] = f"{self.base}/lineitems/{link.lineitem_id}"
            claims[AGS] = ags
        else:
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": self.base + "/deep-link-return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["window"], "accept_multiple": False,
                "data": "opaque-" + secrets.token_hex(4)}
        for name, value in intent.overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = intent.sign_with or self.key
        return jwt.encode({"alg": "RS256", "kid": self.kid}, claims, key)

    def _new_lineitem(self, body: dict[str, Any]) -> str:
        with self.lock:
            item_id = str(len(self.lineitems) + 1)
            self.lineitems[item_id] = {**body, "id": f"{self.base}/lineitems/{item_id}"}
        return item_id

    def tool_keys(self) -> KeySet:
        with urllib.request.urlopen(self.tool_url + "/lti/jwks", timeout=30) as r:
            return KeySet.import_key_set(json.loads(r.read()))

    def verify_from_tool(self, token: str) -> dict[str, Any]:
        """A JWT signed by the tool, checked against the key set the tool publishes (as platforms do)."""
        return dict(jwt.decode(token, self.tool_keys(), algorithms=["RS256"]).claims)


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first form of an HTML page (what a browser would post)."""
    action = html.unescape(re.search(r'<form[^>]*action="([^"]*)"', page).group(1))  # type: ignore[union-attr]
    fields = {html.unescape(n): html.unescape(v)
              for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
    return action, fields


class _Handler(BaseHTTPRequestHandler):
    owner: FakePlatform
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------------

    def _send(self, status: int, body: Any, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self._body().decode()).items()}

    def _authorized(self, scope: str) -> bool:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if scope not in self.owner.tokens.get(token, []):
            self._send(401, {"error": "invalid_token"})
            return False
        return True

    def _register(self) -> None:
        """Dynamic Registration: accept the tool's client registration with the token the LMS handed out."""
        p = self.owner
        if self.headers.get("Authorization") != f"Bearer {p.registration_token}":
            self._send(401, {"error": "invalid_token"})
            return
        body = json.loads(self._body())
        needed = ("initiate_login_uri", "redirect_uris", "jwks_uri", "https://purl.imsglobal.org/spec/lti-tool-configuration")
        if not all(body.get(k) for k in needed) or body.get("token_endpoint_auth_method") != "private_key_jwt":
            self._send(400, {"error": "invalid_client_metadata"})
            return
        with p.lock:
            p.registrations.append(body)
        tool = {**body["https://purl.imsglobal.org/spec/lti-tool-configuration"], "deployment_id": p.deployment_id}
        self._send(200, {**body, "client_id": p.client_id,
                         "https://purl.imsglobal.org/spec/lti-tool-configuration": tool})

    def _service_down(self) -> bool:
        if self.owner.down:
            with self.owner.lock:
                self.owner.failed_calls += 1
            self._send(503, {"error": "maintenance"})
            return True
        return False

    # -- routes ----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        p = self.owner
        if url.path == "/jwks":
            self._send(200, {"keys": [p.key.as_dict(private=False, kid=p.kid, use="sig", alg="RS256")]})
        elif url.path == "/.well-known/openid-configuration":
            self._send(200, p.openid_configuration())
        elif url.path == "/auth":
            self._authorize(query)
        elif url.path.startswith("/lms/") and url.path.removeprefix("/lms/") in p.pages:
            # The LMS page that starts a launch in a browser (see publish_launch_page).
            self._send(200, p.pages[url.path.removeprefix("/lms/")], "text/html")
        elif url.path == "/lineitems":
            if self._service_down() or not self._authorized(SCOPES[0]):
                return
            with p.lock:
                items = [i for i in p.lineitems.values()
                         if "resource_link_id" not in query or i.get("resourceLinkId") == query["resource_link_id"]]
            self._send(200, items, "application/vnd.ims.lis.v2.lineitemcontainer+json")
        elif url.path.startswith("/memberships/"):
            if self._service_down() or not self._authorized(SCOPES[3]):
                return
            members = [{"user_id": x.sub, "name": x.name, "email": x.email, "status": "Active",
                        "roles": [x.role if "://" in x.role else ROLE + x.role]} for x in p.people.values()]
            page = int(query.get("page", "0"))
            chunk = members[page * 2:page * 2 + 2]
            headers = {}
            if (page + 1) * 2 < len(members):
                headers["Link"] = f'<{p.base}{url.path}?page={page + 1}>; rel="next"'
            self._send(200, {"id": p.base + url.path, "context": {"id": p.context_id}, "members": chunk},
                       "application/vnd.ims.lti-nrps.v2.membershipcontainer+json", headers)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        p = self.owner
        if url.path == "/auth":
            self._authorize(self._form())
        elif url.path == "/token":
            self._token(self._form())
        elif url.path == "/lineitems":
            if self._service_down() or not self._authorized(SCOPES[0]):
                return
            body = json.loads(self._body())
            item_id = p._new_lineitem(body)
            self._send(201, p.lineitems[item_id], "application/vnd.ims.lis.v2.lineitem+json")
        elif re.fullmatch(r"/lineitems/\d+/scores", url.path):
            if self._service_down() or not self._authorized(SCOPES[2]):
                return
            item_id = url.path.split("/")[2]
            if item_id not in p.lineitems:
                self._send(404, {"error": "no such line item"})
                return
            if self.headers.get("Content-Type") != "application/vnd.ims.lis.v1.score+json":
                self._send(415, {"error": "wrong content type"})
                return
            score = json.loads(self._body())
            with p.lock:
                p.scores.append({**score, "lineitem": item_id})
            self._send(200, {})
        elif url.path == "/deep-link-return":
            self._deep_link_return(self._form())
        elif url.path == "/register":
            self._register()
        else:
            self._send(404, {"error": "not found"})

    def _authorize(self, q: dict[str, str]) -> None:
        p = self.owner
        expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
                    "client_id": p.client_id, "redirect_uri": p.tool_url + "/lti/launch"}
        wrong = {k: q.get(k) for k, v in expected.items() if q.get(k) != v}
        intent = p.intents.pop(q.get("lti_message_hint", ""), None)
        if wrong or not q.get("nonce") or not q.get("state") or intent is None or \
                q.get("login_hint") != intent.person.sub:
            self._send(400, {"error": "invalid_request", "wrong": wrong, "intent": intent is not None})
            return
        token = p.id_token(intent, q["nonce"])
        page = (f'<!doctype html><form method="post" action="{html.escape(q["redirect_uri"])}">'
                f'<input type="hidden" name="id_token" value="{token}">'
                f'<input type="hidden" name="state" value="{html.escape(q["state"])}"></form>'
                '<script>document.forms[0].submit()</script>')
        self._send(200, page, "text/html")

    def _token(self, form: dict[str, str]) -> None:
        p = self.owner
        with p.lock:
            p.token_requests += 1
        if self._service_down():
            return
        try:
            claims = p.verify_from_tool(form.get("client_assertion", ""))
        except Exception as exc:  # any verification failure is the client's
            self._send(401, {"error": "invalid_client", "detail": str(exc)})
            return
        ok = (form.get("grant_type") == "client_credentials" and claims.get("iss") == p.client_id
              and claims.get("sub") == p.client_id and claims.get("aud") == p.base + "/token"
              and claims.get("exp", 0) > time.time() and claims.get("jti"))
        if not ok:
            self._send(401, {"error": "invalid_client", "claims": claims})
            return
        token = secrets.token_urlsafe(16)
        p.tokens[token] = [s for s in form.get("scope", "").split() if s in SCOPES]
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                         "scope": " ".join(p.tokens[token])})

    def _deep_link_return(self, form: dict[str, str]) -> None:
        p = self.owner
        try:
            claims = p.verify_from_tool(form.get("JWT", ""))
        except Exception as exc:
            self._send(400, {"error": "bad deep linking response", "detail": str(exc)}, "application/json")
            return
        if claims.get("aud") != p.issuer or claims.get("iss") != p.client_id or \
                claims.get(LTI + "message_type") != "LtiDeepLinkingResponse" or \
                claims.get(LTI + "deployment_id") != p.deployment_id:
            self._send(400, {"error": "wrong claims", "claims": claims})
            return
        made = []
        for item in claims.get(DL + "content_items", []):
            p.deep_link_items.append(item)
            line = item.get("lineItem")
            link = ResourceLink("rl-" + secrets.token_hex(4), item.get("title", ""), item.get("custom", {}), None)
            if line:
                link.lineitem_id = p._new_lineitem({"label": line.get("label"), "scoreMaximum": line["scoreMaximum"],
                                                    "resourceId": line.get("resourceId"), "tag": line.get("tag"),
                                                    "resourceLinkId": link.id})
            p.links[link.id] = link
            made.append(link.id)
        self._send(200, f"<!doctype html><p id=linked>Linked: {' '.join(made)}</p>", "text/html")

