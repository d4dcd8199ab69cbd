"""`gradax lti ...`: register platforms and deployments, print the tool's configuration and key set, rotate
keys, map LMS courses to gradax courses, sync rosters and see or re-send grades. Exit 0 on success, 1 when
the thing asked for is not there, 2 on bad input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # every `gradax` command loads this module (its entry point): SQLAlchemy only when used
    from sqlalchemy.orm import Session


@contextmanager
def _session() -> Iterator[Session]:
    from app.core.config import get_settings
    from app.db import make_engine, make_session_factory
    from app.migrate import upgrade_to_head

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_to_head(engine)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str, code: int = 2) -> int:
    print(f"gradax lti: {message}", file=sys.stderr)
    return code


def _tool_url(args: argparse.Namespace) -> str | None:
    from app.core.config import get_settings

    url: str = (args.url or get_settings().public_url).rstrip("/")
    return url or None


def cmd_add_platform(args: argparse.Namespace) -> int:
    from app.lti.platforms import RegistrationError, add_platform

    with _session() as session:
        try:
            platform = add_platform(session, name=args.name or "", issuer=args.issuer, client_id=args.client_id,
                                    auth_login_url=args.auth_login_url, auth_token_url=args.auth_token_url,
                                    jwks_url=args.jwks_url, deployment_ids=args.deployment_id or [],
                                    token_audience=args.token_audience)
        except RegistrationError as exc:
            return _fail(str(exc))
        print(f"registered platform {platform.id}: {platform.name} ({platform.issuer}, client id "
              f"{platform.client_id}); deployments: {', '.join(d.deployment_id for d in platform.deployments) or '-'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from app.lti.platforms import list_platforms

    with _session() as session:
        platforms = list_platforms(session)
        if args.json:
            print(json.dumps([{"id": p.id, "name": p.name, "issuer": p.issuer, "client_id": p.client_id,
                               "auth_login_url": p.auth_login_url, "auth_token_url": p.auth_token_url,
                               "jwks_url": p.jwks_url, "token_audience": p.token_audience,
                               "deployment_ids": [d.deployment_id for d in p.deployments]} for p in platforms],
                             indent=2))
            return 0
        if not platforms:
            print("no platforms registered (gradax lti add-platform --help)")
        for p in platforms:
            print(f"{p.id:4}  {p.name}\n      issuer {p.issuer}  client id {p.client_id}\n"
                  f"      deployments: {', '.join(d.deployment_id for d in p.deployments) or '-'}")
    return 0


def _with_platform(args: argparse.Namespace, action: Callable[[Session, Any], int]) -> int:
    from app.lti.platforms import get_platform

    with _session() as session:
        platform = get_platform(session, args.platform)
        if platform is None:
            return _fail(f"no platform {args.platform!r} (an id from `gradax lti list`, or an issuer)", 1)
        return action(session, platform)


def cmd_add_deployment(args: argparse.Namespace) -> int:
    from app.lti.platforms import RegistrationError, add_deployment

    def act(session: Session, platform: Any) -> int:
        try:
            added = add_deployment(session, platform, args.deployment_id)
        except RegistrationError as exc:
            return _fail(str(exc))
        print(("added" if added else "already had") + f" deployment {args.deployment_id!r} on {platform.name}")
        return 0

    return _with_platform(args, act)


def cmd_remove_deployment(args: argparse.Namespace) -> int:
    from app.lti.platforms import remove_deployment

    def act(session: Session, platform: Any) -> int:
        if not remove_deployment(session, platform, args.deployment_id):
            return _fail(f"{platform.name} has no deployment {args.deployment_id!r}", 1)
        print(f"removed deployment {args.deployment_id!r} from {platform.name}")
        return 0

    return _with_platform(args, act)


def cmd_remove_platform(args: argparse.Namespace) -> int:
    def act(session: Session, platform: Any) -> int:
        name = platform.name
        session.delete(platform)
        session.commit()
        print(f"removed platform {name} (its launches stop working; accounts stay)")
        return 0

    return _with_platform(args, act)


def cmd_config(args: argparse.Namespace) -> int:
    from app.lti.config import tool_configuration

    url = _tool_url(args)
    if url is None:
        return _fail("say where LMSs reach gradax: --url https://gradax.example.edu (or set GRADAX_PUBLIC_URL)")
    print(json.dumps(tool_configuration(args.lms, url), indent=2))
    return 0


def cmd_jwks(args: argparse.Namespace) -> int:
    from app.lti.keys import public_jwks

    with _session() as session:
        print(json.dumps(public_jwks(session), indent=2))
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from app.lti.keys import ensure_key, statuses

    with _session() as session:
        ensure_key(session)
        for s in statuses(session):
            print(f"{s.kid}  {s.status:9}  created {s.created_at:%Y-%m-%d %H:%M}  signs from "
                  f"{s.activates_at:%Y-%m-%d %H:%M} UTC")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from app.lti.keys import rotate

    ahead = timedelta(0) if args.now else timedelta(hours=args.publish_ahead_hours)
    with _session() as session:
        key = rotate(session, publish_ahead=ahead)
        print(f"new key {key.kid}: published now, signs from {key.activates_at:%Y-%m-%d %H:%M} UTC; "
              "the current key stays published until a day after that")
    return 0


def cmd_keys_retire(args: argparse.Namespace) -> int:
    from app.lti.keys import retire

    with _session() as session:
        try:
            if not retire(session, args.kid):
                return _fail(f"no live key {args.kid!r} (gradax lti keys list)", 1)
        except ValueError as exc:
            return _fail(str(exc))
        print(f"retired key {args.kid}: no longer published or used")
    return 0


def register_lti(subparsers: Any) -> None:
    p = subparsers.add_parser("lti", help="LTI 1.3: register LMS platforms, tool configuration, keys, grades "
                                          "(docs/lti.md)")
    sub = p.add_subparsers(dest="lti_command", required=True)

    a = sub.add_parser("add-platform", help="register an LMS (from its LTI 1.3 tool registration page)")
    a.add_argument("--issuer", required=True, help="the platform's issuer (iss), e.g. https://canvas.instructure.com")
    a.add_argument("--client-id", required=True, help="the client id the LMS gave gradax")
    a.add_argument("--auth-login-url", required=True, help="OIDC authorization endpoint of the platform")
    a.add_argument("--auth-token-url", required=True, help="OAuth2 token endpoint (grades and rosters)")
    a.add_argument("--jwks-url", required=True, help="the platform's public key set URL")
    a.add_argument("--deployment-id", action="append", help="a deployment id (repeat for several)")
    a.add_argument("--name", help="a name for people (default: the issuer)")
    a.add_argument("--token-audience", help="aud of our token requests when not the token URL (Brightspace)")
    a.set_defaults(func=cmd_add_platform)

    ls = sub.add_parser("list", help="registered platforms and their deployments")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    for name, func, helptext in (("add-deployment", cmd_add_deployment, "allow launches from a deployment id"),
                                 ("remove-deployment", cmd_remove_deployment, "refuse a deployment id again")):
        d = sub.add_parser(name, help=helptext)
        d.add_argument("platform", help="platform id (gradax lti list) or issuer")
        d.add_argument("deployment_id")
        d.set_defaults(func=func)

    g = sub.add_parser("registration-url", help="a one-time URL an LMS registers gradax with (Dynamic Registration)")
    g.add_argument("--name", help="what to call the platform here (default: the LMS's own name and issuer)")
    g.add_argument("--hours", type=float, default=72.0, help="how long the URL stays valid (default 72)")
    g.add_argument("--url", help="the address LMSs reach gradax at (default: GRADAX_PUBLIC_URL)")
    g.set_defaults(func=cmd_registration_url)

    r = sub.add_parser("remove-platform", help="unregister a platform (its launches stop working)")
    r.add_argument("platform", help="platform id (gradax lti list) or issuer")
    r.set_defaults(func=cmd_remove_platform)

    c = sub.add_parser("config", help="print the tool configuration JSON for an LMS")
    c.add_argument("lms", choices=["canvas", "moodle"])
    c.add_argument("--url", help="where LMSs reach gradax (default GRADAX_PUBLIC_URL)")
    c.set_defaults(func=cmd_config)

    j = sub.add_parser("jwks", help="print the tool's public key set (what /lti/jwks serves)")
    j.set_defaults(func=cmd_jwks)

    k = sub.add_parser("keys", help="the tool's signing keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kl = ksub.add_parser("list", help="every key and what it does now")
    kl.set_defaults(func=cmd_keys_list)
    kr = ksub.add_parser("rotate", help="add a new key: published at once, signing after --publish-ahead-hours")
    kr.add_argument("--publish-ahead-hours", type=float, default=1.0,
                    help="hours platforms get to see the new key before it signs (default 1)")
    kr.add_argument("--now", action="store_true", help="sign with the new key at once")
    kr.set_defaults(func=cmd_keys_rotate)
    kt = ksub.add_parser("retire", help="unpublish a key at once (a leaked key)")
    kt.add_argument("kid")
    kt.set_defaults(func=cmd_keys_retire)

    _register_course_commands(sub)


def _services() -> Any:
    from app.core.config import get_settings
    from app.lti.keys import signing_key
    from app.lti.services import PlatformServices

    def key() -> Any:
        with _session() as session:
            return signing_key(session)

    return PlatformServices(signing_key=key, timeout_s=get_settings().lti_http_timeout_s)


def _context(session: Session, platform: Any, context_id: str) -> Any:
    from sqlalchemy import select

    from app.lti.models import LtiContext

    return session.scalar(select(LtiContext).where(LtiContext.platform_id == platform.id,
                                                   LtiContext.context_id == context_id))


def cmd_registration_url(args: argparse.Namespace) -> int:
    import getpass

    from app.lti.platforms import RegistrationError
    from app.lti.registration import issue, registration_url

    tool_url = _tool_url(args)
    if tool_url is None:
        return _fail("give the address LMSs reach gradax at: --url https://gradax.example.edu (or GRADAX_PUBLIC_URL)")
    with _session() as session:
        try:
            key = issue(session, name=args.name or "", created_by=getpass.getuser(),
                        lifetime=timedelta(hours=args.hours))
        except RegistrationError as exc:
            return _fail(str(exc))
    print(registration_url(tool_url, key))
    print(f"One use, valid for {args.hours:g} h: paste it into the LMS's LTI Advantage / Dynamic Registration form "
          "(Moodle: Manage tools > Tool URL; Canvas: Developer Keys > + LTI Registration).", file=sys.stderr)
    return 0


def cmd_map_context(args: argparse.Namespace) -> int:
    from app.lti.models import LtiContext
    from app.models import Course

    def act(session: Session, platform: Any) -> int:
        if session.get(Course, args.course) is None:
            return _fail(f"no course {args.course!r} (courses/<id>/course.yaml, synced at start)", 1)
        context = _context(session, platform, args.context_id)
        if context is None:
            context = LtiContext(platform_id=platform.id, context_id=args.context_id, title=args.context_id)
            session.add(context)
        context.course_id = args.course
        session.commit()
        print(f"LMS course {args.context_id} of {platform.name} is gradax course {args.course}")
        return 0

    return _with_platform(args, act)


def cmd_sync_roster(args: argparse.Namespace) -> int:
    from app.lti.roster import sync_roster
    from app.lti.services import ServiceError

    def act(session: Session, platform: Any) -> int:
        context = _context(session, platform, args.context_id)
        if context is None:
            return _fail(f"no LMS course {args.context_id!r} has launched gradax from {platform.name}", 1)
        try:
            result = sync_roster(session, _services(), context)
        except (ValueError, ServiceError) as exc:
            return _fail(str(exc), 1)
        print(f"roster of {context.title}: {result.members} members, {result.enrolled} enrolled in "
              f"{context.course_id}, {result.removed} removed")
        return 0

    return _with_platform(args, act)


def cmd_grades(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.lti.models import LtiResourceLink
    from app.lti.passback import link_status, refresh_all, resend_all

    with _session() as session:
        links = list(session.scalars(select(LtiResourceLink).order_by(LtiResourceLink.id)))
        if args.resend:
            chosen = [link.id for link in links if str(link.id) in args.resend or link.target in args.resend]
            if not chosen:
                return _fail("no such link (gradax lti grades lists them)", 1)
            refresh_all(session, chosen)
            print(f"{resend_all(session, chosen)} grades will be sent again by the server")
            return 0
        for link in links:
            s = link_status(session, link)
            print(f"{link.id:4}  {link.target_kind} {link.target}  ({link.title}): {s.students} students, "
                  f"{s.synced} in sync, {s.pending} pending, {s.failing} failing"
                  + (f"; last error: {s.last_error}" if s.last_error else ""))
    return 0


def _register_course_commands(sub: Any) -> None:
    m = sub.add_parser("map-context", help="make an LMS course (context id) a gradax course")
    m.add_argument("platform", help="platform id (gradax lti list) or issuer")
    m.add_argument("context_id", help="the LMS course's context id (as launches send it)")
    m.add_argument("course", help="the gradax course id (courses/<id>)")
    m.set_defaults(func=cmd_map_context)

    r = sub.add_parser("sync-roster", help="enrol the LMS course's members (Names and Roles service)")
    r.add_argument("platform", help="platform id (gradax lti list) or issuer")
    r.add_argument("context_id")
    r.set_defaults(func=cmd_sync_roster)

    g = sub.add_parser("grades", help="grade passback status per LMS link; --resend to send a link's grades again")
    g.add_argument("--resend", nargs="+", metavar="LINK", help="link ids or targets whose grades to send again")
    g.set_defaults(func=cmd_grades)
