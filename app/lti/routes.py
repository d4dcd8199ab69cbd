"""LTI 1.3 endpoints: `/lti/login` (OIDC initiation), `/lti/launch`, `/lti/jwks`, `/lti/deep-link`, and the
tool configuration for Canvas and Moodle. The protocol lives in app/lti/launch.py; these only translate."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.deps import AuthGuardDep, SessionDep, SettingsDep, client_address
from app.errors import AppError, not_found
from app.lti import keys
from app.lti.accounts import (
    course_role,
    keep_new_account,
    launch_email,
    link_typed_account,
    sign_in,
    typed_holder,
)
from app.lti.config import tool_configuration
from app.lti.deep_linking import choices, open_request, response_jwt, start_deep_link
from app.lti.deps import PassbackDep, PlatformKeysDep, ToolUrlDep
from app.lti.enrolment import after_resource_launch, assignment_of, enrol
from app.lti.http import client as http_client
from app.lti.launch import (
    DEEP_LINKING_REQUEST,
    STATE_LIFETIME,
    LaunchError,
    initiate_login,
    state_cookie_name,
    validate_launch,
)
from app.lti.links import record_context, record_resource_link, target_of
from app.lti.models import LtiContext, LtiResourceLink
from app.lti.passback import link_status, refresh_all, resend_all
from app.lti.platforms import RegistrationError
from app.lti.registration import register
from app.lti.roster import sync_roster
from app.lti.services import ServiceError
from app.models import CourseRole, User
from app.pages.deps import LoginRequired, PageUser, SignedInUser, check_form_csrf, start_session
from app.pages.rendering import page, render_error
from app.pages.routes import safe_next
from app.services.courses import course_role as course_role_here
from app.services.courses import courses_of
from app.services.users import authenticate

log = logging.getLogger("gradax.lti")
router = APIRouter(prefix="/lti", tags=["lti"])


def _refuse(request: Request, exc: LaunchError) -> Response:
    log.warning("LTI %s refused: %s", request.url.path, exc.message)
    return render_error(request, exc.status_code, f"LTI launch refused: {exc.message}")


async def _params(request: Request) -> dict[str, str]:
    """Login initiation may come as a GET (query) or a POST (form), per the OIDC third-party initiation spec."""
    params = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


# One handler, two routes: platforms initiate with either method, and each operation needs an id of its own in the
# OpenAPI schema (`api_route` with both methods gave both the same one, which client generators refuse).
@router.get("/login", response_model=None, operation_id="lti_login_get", summary="OIDC third-party login initiation")
@router.post("/login", response_model=None, operation_id="lti_login_post",
             summary="OIDC third-party login initiation (form post)")
async def lti_login(request: Request, session: SessionDep, tool_url: ToolUrlDep) -> Response:
    """Start a launch: remember a one-time state and nonce, then send the browser to the platform."""
    try:
        redirect = initiate_login(session, await _params(request), redirect_uri=tool_url + "/lti/launch")
    except LaunchError as exc:
        return _refuse(request, exc)
    response = RedirectResponse(redirect.url, status_code=302)
    # Sent back on the platform's cross-site form POST only with SameSite=None (which browsers accept only
    # with Secure; http://localhost counts as secure). Scoped to /lti/ and short-lived.
    response.set_cookie(state_cookie_name(redirect.state), "1", max_age=int(STATE_LIFETIME.total_seconds()),
                        path="/lti/", secure=True, httponly=True, samesite="none")
    return response


@router.post("/launch", response_model=None, summary="LTI 1.3 launch (the platform's id_token form post)")
def lti_launch(request: Request, session: SessionDep, platform_keys: PlatformKeysDep,
               id_token: Annotated[str, Form(max_length=64 * 1024)] = "",
               state: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Validate the launch, sign the user in, and open what the link points at."""
    try:
        launch = validate_launch(session, id_token=id_token, state=state, cookies=request.cookies,
                                 keys=platform_keys)
    except LaunchError as exc:
        return _refuse(request, exc)
    user = sign_in(session, launch)
    email = launch_email(launch)
    holder = typed_holder(session, user, email)
    holder_id = holder.id if holder is not None else None
    start_session(request, session, user.id)
    context = record_context(session, launch)
    if launch.message_type == DEEP_LINKING_REQUEST:
        enrol(session, context, user, course_role(launch.roles))
        try:
            request_id = start_deep_link(session, launch, user, context)
        except LaunchError as exc:
            return _refuse(request, exc)
        destination = f"/lti/deep-link?request={request_id}"
    else:
        target = target_of(launch)
        if target is None:
            session.commit()
            return render_error(request, 404, "This LMS link does not say which gradax problem or assignment to "
                                "open. Ask your instructor to add it again through the LMS's gradax tool picker.")
        link = record_resource_link(session, launch, context, target)
        destination = after_resource_launch(session, launch, user, context, link, course_role(launch.roles))
        session.commit()
        assignment = assignment_of(session, link.target) if link.target_kind == "assignment" else None
        if assignment is not None and course_role_here(session, assignment.course_id, user) is None:
            return render_error(request, 403, f"This link opens {assignment.title} of the gradax course "
                                f"{assignment.course_id}, which this LMS course is not connected to, so you are not "
                                "enrolled in it. An instructor of that course connects them by opening the link once "
                                "from the LMS, or by adding it through the LMS's gradax tool picker.")
    if holder_id is not None:
        # An account with a password typed this person's email before: theirs, or someone posing as them. The
        # launch went to an account of its own; the person may move it there by giving that account's password.
        request.session[LINK_OFFER] = {"user": user.id, "holder": holder_id, "email": email, "next": destination}
        destination = "/lti/link-account"
    response: Response = RedirectResponse(destination, status_code=303)
    response.delete_cookie(state_cookie_name(state), path="/lti/", secure=True, httponly=True, samesite="none")
    return response


LINK_OFFER = "lti_link_offer"


def _link_offer(request: Request, session: Session, user: User) -> tuple[dict[str, Any], User] | None:
    """The offer this browser's launch made (signed session cookie), for the account it signed in, and the
    account with a password it names."""
    offer = request.session.get(LINK_OFFER)
    if not isinstance(offer, dict) or offer.get("user") != user.id:
        return None
    holder = session.get(User, offer.get("holder"))
    return (offer, holder) if holder is not None else None


def _link_page(request: Request, user: User, holder: User, offer: dict[str, Any], error: str | None = None,
               status_code: int = 200) -> HTMLResponse:
    return page(request, "lti_link_account.html", {"user": user, "holder": holder.username,
                                                   "email": offer.get("email") or "", "error": error},
                status_code=status_code)


@router.get("/link-account", response_class=HTMLResponse, response_model=None,
            summary="After a first launch: use an account registered earlier with this email")
def link_account_page(request: Request, session: SessionDep, user: SignedInUser) -> Response:
    found = _link_offer(request, session, user)
    if found is None:
        return RedirectResponse("/", status_code=303)
    offer, holder = found
    return _link_page(request, user, holder, offer)


@router.post("/link-account", response_model=None, summary="Move this LMS sign-in to an earlier account")
async def link_account(request: Request, session: SessionDep, user: SignedInUser, guard: AuthGuardDep,
                       password: Annotated[str, Form(max_length=256)] = "",
                       choice: Annotated[str, Form(max_length=10)] = "link",
                       csrf_token: Annotated[str, Form()] = "") -> Response:
    """`choice=new` keeps the new account; else the earlier account's password moves the LMS link to it."""
    check_form_csrf(request, csrf_token)
    found = await run_in_threadpool(_link_offer, request, session, user)
    if found is None:
        return RedirectResponse("/", status_code=303)
    offer, holder = found
    destination = safe_next(offer.get("next"))
    email = offer.get("email")
    if not isinstance(email, str):
        return RedirectResponse(destination, status_code=303)
    if choice == "new":
        request.session.pop(LINK_OFFER, None)
        await run_in_threadpool(keep_new_account, session, user, email)
        return RedirectResponse(destination, status_code=303)
    try:
        guard.check(client=client_address(request), username=holder.username)
        proven = await guard.hashing(lambda: authenticate(session=session, username=holder.username,
                                                          password=password))
    except AppError as exc:
        return _link_page(request, user, holder, offer, exc.detail, exc.status_code)
    if proven is None:
        return _link_page(request, user, holder, offer, f"That is not the password of {holder.username}.", 401)
    linked = await run_in_threadpool(lambda: link_typed_account(session, user, holder, email))
    if not linked:
        request.session.pop(LINK_OFFER, None)
        return render_error(request, 409, f"This LMS sign-in has work of its own now, so it stays a separate "
                                          f"account; {holder.username} keeps its own work.")
    await run_in_threadpool(start_session, request, session, holder.id)
    return RedirectResponse(destination, status_code=303)


@router.get("/jwks", summary="The tool's public key set (JWKS)")
def lti_jwks(session: SessionDep) -> JSONResponse:
    """Platforms verify our deep-linking responses and service-token assertions with these keys."""
    return JSONResponse(keys.public_jwks(session), headers={"Cache-Control": "public, max-age=300"})


@router.get("/deep-link", response_class=HTMLResponse, summary="Deep linking: pick what to link")
def deep_link_picker(request: Request, session: SessionDep, user: PageUser,
                     request_id: Annotated[str, Query(alias="request", max_length=100)]) -> Response:
    """The content picker an instructor sees after a deep-linking launch."""
    try:
        dl = open_request(session, request_id, user)
    except LaunchError as exc:
        return _refuse(request, exc)
    return page(request, "lti_deep_link.html", {"user": user, "request_id": dl.id,
                                                "choices": choices(session, dl), "platform": dl.platform.name})


@router.post("/deep-link", response_class=HTMLResponse, summary="Deep linking: send the choice to the LMS")
def deep_link_choose(request: Request, session: SessionDep, user: PageUser, tool_url: ToolUrlDep,
                     request_id: Annotated[str, Form(alias="request", max_length=100)],
                     choice: Annotated[str, Form(max_length=300)],
                     csrf_token: Annotated[str, Form()] = "") -> Response:
    """Sign the deep-linking response and hand it to the browser, which posts it to the LMS."""
    check_form_csrf(request, csrf_token)
    try:
        dl = open_request(session, request_id, user)
    except LaunchError as exc:
        return _refuse(request, exc)
    picked = next((c for c in choices(session, dl) if c.key == choice), None)
    if picked is None:
        return render_error(request, 422, f"{choice!r} is not something gradax can link")
    token = response_jwt(session, dl, picked, tool_url=tool_url)
    return autopost(request, dl.return_url, {"JWT": token}, title=f"Linking {picked.title}")


def autopost(request: Request, action: str, fields: dict[str, str], *, title: str) -> HTMLResponse:
    """A form the browser posts to another site at once (a script, or the button without scripts). The page's
    CSP allows exactly that one form target."""
    response = page(request, "lti_autopost.html", {"action": action, "fields": fields, "title": title})
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(action))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; "
        f"base-uri 'self'; form-action {origin}; frame-ancestors 'none'")
    return response


@router.get("/register", response_class=HTMLResponse, response_model=None,
            summary="LTI Dynamic Registration (the LMS opens gradax's one-time registration URL)")
def lti_register(request: Request, session: SessionDep, settings: SettingsDep, tool_url: ToolUrlDep,
                 key: Annotated[str, Query(max_length=200)] = "",
                 openid_configuration: Annotated[str, Query(max_length=2000)] = "",
                 registration_token: Annotated[str, Query(max_length=16_000)] = "") -> Response:
    """Register the LMS that opened this URL (app/lti/registration.py), then let it close the dialog."""
    if not openid_configuration:
        return render_error(request, 400, "This is a gradax LTI registration URL: paste it into your LMS's LTI "
                            "Advantage (Dynamic Registration) form; the LMS opens it with its configuration.")
    with http_client(settings.lti_http_timeout_s) as http:
        try:
            platform = register(session, http, key=key, openid_configuration=openid_configuration,
                                registration_token=registration_token, tool_url=tool_url)
        except RegistrationError as exc:
            log.warning("LTI dynamic registration refused: %s", exc)
            return render_error(request, 400, f"LTI registration refused: {exc}")
    log.info("LTI platform %d registered itself: %s (client id %s)", platform.id, platform.issuer,
             platform.client_id)
    response = page(request, "lti_registered.html", {
        "platform": platform, "deployments": [d.deployment_id for d in platform.deployments]})
    # The LMS shows this page in a frame of its own: let that origin (and only it) frame it.
    parts = urlsplit(openid_configuration)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; "
        f"base-uri 'self'; form-action 'self'; frame-ancestors {parts.scheme}://{parts.netloc}")
    return response


@router.get("/config/{lms}.json", summary="Tool configuration JSON for Canvas or Moodle")
def lti_config(lms: str, tool_url: ToolUrlDep) -> JSONResponse:
    """Paste into Canvas (Developer Keys > LTI Key > Paste JSON) or read off for Moodle's tool form."""
    try:
        return JSONResponse(tool_configuration(lms, tool_url))
    except ValueError as exc:
        raise AppError(404, str(exc)) from exc


def _visible_links(session: Session, user: User) -> list[LtiResourceLink]:
    """Site staff see every link; course instructors and TAs the links of LMS courses mapped to their courses."""
    query = select(LtiResourceLink).outerjoin(LtiContext, LtiContext.id == LtiResourceLink.context_pk)
    if not user.is_staff:
        mine = [c.id for c, role in courses_of(session, user) if role != CourseRole.STUDENT]
        query = query.where(LtiContext.course_id.in_(mine))
    return list(session.scalars(query.order_by(LtiResourceLink.id)))


def get_link_staff(session: SessionDep, user: PageUser) -> User:
    """Site staff, or the instructors and TAs of a course (anonymous visitors go to log in, students get 403)."""
    if user is None:
        raise LoginRequired("/lti/status")
    if not user.is_staff and not any(role != CourseRole.STUDENT for _, role in courses_of(session, user)):
        raise AppError(403, "This page is for instructors and TAs.")
    return user


LinkStaff = Annotated[User, Depends(get_link_staff)]


@router.get("/status", response_class=HTMLResponse, summary="Grade passback status per LMS link")
def lti_status(request: Request, session: SessionDep, staff: LinkStaff, message: str = "") -> Response:
    """Per linked assignment or problem: students, scores in sync, pending, failing with the last error."""
    links = _visible_links(session, staff)
    rows = [(link, link_status(session, link)) for link in links]
    contexts = {link.context.id: link.context for link in links if link.context is not None}
    return page(request, "lti_status.html", {"user": staff, "rows": rows, "contexts": list(contexts.values()),
                                             "message": message[:300]})


@router.post("/status/resend", response_model=None, summary="Send all grades of a link again")
def lti_resend(request: Request, session: SessionDep, staff: LinkStaff, passback: PassbackDep,
               link_id: Annotated[int, Form()], csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    if link_id not in {link.id for link in _visible_links(session, staff)}:
        raise not_found(f"LMS link {link_id} among yours")
    refresh_all(session, [link_id])
    count = resend_all(session, [link_id])
    passback.nudge()
    return RedirectResponse(f"/lti/status?message=Sending+{count}+grades+again", status_code=303)


@router.post("/status/roster", response_model=None, summary="Sync an LMS course's roster (Names and Roles)")
def lti_roster(request: Request, session: SessionDep, staff: LinkStaff, passback: PassbackDep,
               context_id: Annotated[int, Form()], csrf_token: Annotated[str, Form()] = "") -> Response:
    check_form_csrf(request, csrf_token)
    context = next((link.context for link in _visible_links(session, staff)
                    if link.context is not None and link.context.id == context_id), None)
    if context is None:
        raise not_found(f"LMS course {context_id} among yours")
    try:
        result = sync_roster(session, passback.services, context)
    except (ValueError, ServiceError) as exc:
        return RedirectResponse("/lti/status?" + urlencode({"message": f"Roster not synced: {exc}"}), 303)
    text = f"Roster synced: {result.members} in the LMS, {result.enrolled} enrolled, {result.removed} removed"
    return RedirectResponse("/lti/status?" + urlencode({"message": text}), status_code=303)
