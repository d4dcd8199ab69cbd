"""`gradax serve`, `gradax worker` and `gradax user`, plugged into the CLI through `gradax.commands` entry points."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from app.roles import Role


def cmd_serve(args: argparse.Namespace) -> int:
    from graders.child.gc_pause import collection_paused

    with collection_paused():  # the app's imports, 1.14 -> 0.91 CPU-s at each start (graders/child/gc_pause.py)
        import uvicorn

        import app.main  # noqa: F401  # what uvicorn's factory string names, imported here
        from app.core.config import get_settings
        from app.http_protocol import protocol_with_deadline
        from app.observability import configure_logging, uvicorn_log_config

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    print(f"gradax: serving on http://{args.host}:{args.port}  (Ctrl+C stops)", file=sys.stderr)
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port,
                log_level=args.log_level_uvicorn, proxy_headers=args.proxy_headers,
                # Idle keep-alive connections close after 5 s (uvicorn); a request that has not fully arrived
                # after GRADAX_REQUEST_TIMEOUT_S has its connection closed (app/http_protocol.py).
                http=protocol_with_deadline(settings.request_timeout_s), timeout_keep_alive=5,
                log_config=uvicorn_log_config(settings.log_format, settings.log_level))
    return 0


def register_serve(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the web app (SQLite and in-process grading by default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level-uvicorn", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* (behind a reverse proxy)")
    p.set_defaults(func=cmd_serve)


def cmd_worker(args: argparse.Namespace) -> int:
    from graders.child.gc_pause import collection_paused

    with collection_paused():  # as `gradax serve`'s
        from app.core.config import get_settings
        from app.grading.worker import default_worker_name, run_worker
        from app.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        return run_worker(settings, concurrency=args.concurrency or settings.worker_concurrency, pool=args.pool,
                          name=args.name or default_worker_name(), sweep=not args.no_sweep,
                          metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    except RuntimeError as exc:
        print(f"gradax worker: {exc}", file=sys.stderr)
        return 2


def register_worker(subparsers: Any) -> None:
    p = subparsers.add_parser("worker", help="grade queued attempts from Redis (GRADAX_REDIS_URL) into the database "
                                             "(GRADAX_DATABASE_URL); see docs/scale.md")
    p.add_argument("--concurrency", type=int, default=0,
                   help="attempts graded at once (default GRADAX_WORKER_CONCURRENCY, 1)")
    p.add_argument("--pool", choices=["solo", "threads"], default="solo",
                   help="solo: one attempt at a time in the main thread; threads: --concurrency threads")
    p.add_argument("--name", default="", help="worker name in logs and claims (default host/pid)")
    p.add_argument("--no-sweep", action="store_true",
                   help="do not re-queue lost or abandoned attempts from this worker (the server does too)")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.set_defaults(func=cmd_worker)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the passwords differ")
    return first


def cmd_user_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.core.config import get_settings
    from app.db import make_engine, make_session_factory
    from app.errors import AppError
    from app.migrate import upgrade_to_head
    from app.schemas import UserCreate
    from app.services.users import create_user

    try:
        body = UserCreate(username=args.username, password=_read_password(args), email=args.email)
    except (ValidationError, ValueError) as exc:
        print(f"gradax user create: {exc}", file=sys.stderr)
        return 2
    from app.core.security import configure_password_hashing

    settings = get_settings()
    configure_password_hashing(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
                               logins=False)  # creates an account, logs no one in
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_to_head(engine)
    with make_session_factory(engine)() as session:
        try:
            user = create_user(session=session, username=body.username, password=body.password,
                               role=Role(args.role), email=body.email, email_verified=True)
        except AppError as exc:
            print(f"gradax user create: {exc.detail}", file=sys.stderr)
            return 1
        print(f"created {user.role} {user.username!r} (id {user.id})")
    engine.dispose()
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.core.config import get_settings
    from app.db import make_engine, make_session_factory
    from app.migrate import upgrade_to_head
    from app.models import User

    settings = get_settings()
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_to_head(engine)
    with make_session_factory(engine)() as session:
        for user in session.scalars(select(User).order_by(User.id)):
            print(f"{user.id:6}  {user.role:10}  {user.username}")
    engine.dispose()
    return 0


def register_user(subparsers: Any) -> None:
    p = subparsers.add_parser("user", help="manage accounts (e.g. the first instructor)")
    sub = p.add_subparsers(dest="user_command", required=True)
    c = sub.add_parser("create", help="create an account; the password is asked for, or read from stdin")
    c.add_argument("username")
    c.add_argument("--role", choices=[r.value for r in Role], default=Role.STUDENT.value)
    c.add_argument("--email", help="the account's email, verified (you vouch for it): LMS launches with this email "
                                   "sign in to this account, and rosters may name it as staff by it")
    c.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    c.set_defaults(func=cmd_user_create)
    ls = sub.add_parser("list", help="list accounts")
    ls.set_defaults(func=cmd_user_list)
