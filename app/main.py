"""The FastAPI application: `create_app()` wires settings, database, problem bank, grading and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from app.api.main import api_router
from app.api.routes.health import router as health_router
from app.core.config import Settings, get_settings
from app.core.security import configure_password_hashing
from app.core.throttle import AuthGuard
from app.db import make_engine, make_session_factory, session_scope
from app.errors import AppError
from app.grading.backend import build_grader
from app.grading.capacity import available_cores, measure
from app.grading.celery_app import BrokerProbe
from app.grading.completions import Completions, RedisRelay
from app.grading.dispatcher import Dispatcher
from app.grading.inprocess_dispatcher import InProcessDispatcher
from app.grading.preparation import BankPreparation
from app.grading.queue_dispatcher import QueueDispatcher
from app.lti.app import LtiRuntime
from app.lti.routes import router as lti_router
from app.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from app.migrate import upgrade_to_head
from app.observability import register_pool_metrics, register_state_metrics
from app.pages.courses import router as course_pages_router
from app.pages.deps import LoginRequired
from app.pages.instructor import router as instructor_pages_router
from app.pages.rendering import render_error
from app.pages.routes import router as pages_router
from app.services.regrades import RegradeJobs
from app.services.reload import mirror, reload_from_disk
from app.services.sessions import COOKIE_LIFETIME
from app.services.upload_checks import UploadChecks
from graders.course import CourseBank
from graders.executor import Executor
from graders.prepare import Preparer
from graders.problem import ProblemBank

log = logging.getLogger("gradax.app")
STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "gradax_session"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


def _error(request: Request, status_code: int, detail: str, headers: dict[str, str] | None,
           page_message: str | None = None) -> Response:
    """One error, two readers: `{"detail": ...}` for API clients, the error page for browsers."""
    if _wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    response = render_error(request, status_code, page_message or detail)
    response.headers.update(headers or {})
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        return _error(request, exc.status_code, exc.detail, exc.headers, exc.page_message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own (unknown route, wrong method); gradax code raises AppError.
        return _error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(str(URL("/login").include_query_params(next=exc.next)), status_code=303)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        # A body that is not JSON at all is a malformed request (400); JSON of the wrong shape is 422.
        broken = [e for e in errors if e.get("type") == "json_invalid"]
        if broken:
            ctx = broken[0].get("ctx") or {}
            return JSONResponse({"detail": f"malformed JSON body: {ctx.get('error', 'cannot parse')}"},
                                status_code=400)
        return JSONResponse({"detail": _jsonable(errors)}, status_code=422)

    @app.exception_handler(DataError)
    async def value_the_database_refuses(request: Request, exc: DataError) -> Response:
        # A value from the request that one database refuses and another takes (a number past a column's range,
        # text too long for its column on PostgreSQL): the request's fault on every backend, never a 500.
        log.warning("the database refused a value on %s %s: %s", request.method, request.url.path,
                    str(exc.orig or type(exc).__name__).partition("\n")[0])
        return _error(request, 400, "a value in the request is out of range for what gradax stores", None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal server error"}, status_code=500)


def _jsonable(errors: object) -> object:
    from fastapi.encoders import jsonable_encoder

    # pydantic puts the offending input (and exception objects) in ctx; keep the response small and serialisable.
    cleaned = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]  # type: ignore[attr-defined]
    return jsonable_encoder(cleaned)


def create_app(settings: Settings | None = None, *, bank: ProblemBank | None = None,
               executor: Executor | None = None) -> FastAPI:
    """The app on `settings` (default: from the environment). `bank` reuses an already loaded problem bank;
    `executor` grades through one the caller runs and closes (a process hosting several apps, such as a test
    process, shares its warm pool instead of starting a zygote per app); by default the app starts the one
    `GRADAX_POOL` picks and closes it when it stops."""
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.resolved_secret()
    configure_password_hashing(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)

    engine = make_engine(settings.sqlalchemy_url)
    upgrade_to_head(engine)
    session_factory = make_session_factory(engine)
    bank = bank or ProblemBank(settings.problems_dir)
    courses = CourseBank(settings.courses_dir, problem_ids=set(bank.problems))
    with session_factory() as session:
        stats = mirror(session=session, problems=bank, courses=courses)
    log.info("problems: %s; courses: %s", stats.problem_changes, stats.course_changes)
    if settings.grading_backend == "inprocess":
        log.info("grading: %d at once (GRADAX_GRADING_WORKERS; this machine: %s)", settings.grading_workers,
                 measure(settings.grading_slot_memory_mb).describe())
    grader = build_grader(settings, bank, executor)
    owns_executor = executor is None
    embedded = settings.grading_backend == "inprocess" and settings.grading_workers > 0
    # Background preparation where this process grades; half the cores, so students' gradings keep the rest.
    preparation = BankPreparation(bank, Preparer(settings), workers=max(1, available_cores() // 2),
                                  background=embedded and settings.prepare_in_background, grades_here=embedded,
                                  warm=settings.pool == "warm",
                                  on_prepared=lambda loaded: grader.executor.stock(loaded, grader.limits_for(loaded)))
    dispatcher: Dispatcher
    completions = Completions(per_user=settings.long_polls_per_user)
    broker_probe: BrokerProbe | None = None
    relay: RedisRelay | None = None
    if settings.grading_backend == "celery":  # scale-out: `gradax worker`s grade (docs/scale.md)
        dispatcher = QueueDispatcher(session_factory, settings)
        broker_probe = BrokerProbe(settings.redis_url)
        relay = RedisRelay(completions, settings.redis_url)
    else:
        dispatcher = InProcessDispatcher(session_factory, grader, workers=settings.grading_workers,
                                         retries=settings.grading_retries, lease_s=settings.grading_lease_s,
                                         sweep_interval_s=min(settings.sweep_interval_s, 2.0),
                                         fair=settings.fair_share(), on_done=completions.notify,
                                         prepare=preparation.ensure, slot_memory_mb=settings.grading_slot_memory_mb)
    register_state_metrics(session_factory=session_factory,
                           broker_length=broker_probe.queue_length if broker_probe else None)
    if settings.grading_backend == "inprocess":
        register_pool_metrics(grader.executor)

    lti = LtiRuntime(settings, session_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The directories the sandbox binds exist before the zygote starts (a fresh data dir raced here), and
        # the bank is prepared in the background from now on.
        preparation.start()
        dispatcher.start()
        lti.start()
        if embedded and owns_executor:
            grader.executor.start()  # the warm pool: its zygote starts now
        if relay is not None:
            relay.start()
        try:
            yield
        finally:
            if relay is not None:
                relay.stop()
            lti.stop()
            preparation.stop()
            dispatcher.stop(timeout=settings.shutdown_grace_s)
            if owns_executor:
                grader.executor.close()  # a warm pool's zygote and children
            engine.dispose()

    app = FastAPI(title="gradax", version="1", lifespan=lifespan, openapi_url="/openapi.json")
    # One of each part for the app's lifetime; routes and pages get them as dependencies (app/api/deps.py).
    app.state.settings = settings
    app.state.secret = secret
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.bank = bank
    app.state.courses = courses
    app.state.grader = grader
    app.state.dispatcher = dispatcher
    app.state.grading_slots = settings.grading_workers if settings.grading_backend == "inprocess" else None
    app.state.completions = completions
    app.state.preparation = preparation
    app.state.done_relay = relay
    app.state.broker_probe = broker_probe
    app.state.lti_platform_keys = lti.platform_keys
    app.state.lti_passback = lti.passback
    app.state.lti_roster = lti.roster
    app.state.auth_guard = AuthGuard(per_client=settings.auth_rate_per_client,
                                     per_username=settings.auth_rate_per_username,
                                     hash_slots=settings.password_hash_slots, hash_wait_s=settings.password_hash_wait_s)
    regrades = RegradeJobs(session_factory, grader, lease_s=settings.grading_lease_s,
                           workers=max(1, settings.grading_workers), prepare=preparation.ensure,
                           students_grading=dispatcher.grading if isinstance(dispatcher, InProcessDispatcher)
                           else None)
    regrades.recover()
    app.state.regrades = regrades

    def reload_bank() -> None:  # after an upload check passed and wrote its files
        with session_scope(session_factory) as session:
            reload_from_disk(session=session, problems=bank, courses=courses, preparation=preparation)

    upload_checks = UploadChecks(session_factory, grader, settings, bank.directory, on_saved=reload_bank)
    upload_checks.recover()
    app.state.upload_checks = upload_checks

    _install_error_handlers(app)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(health_router)
    app.include_router(pages_router)
    app.include_router(instructor_pages_router)
    app.include_router(course_pages_router)
    app.include_router(lti_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # Outermost last: security headers wrap everything, the body cap runs before sessions and parsing.
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=int(COOKIE_LIFETIME.total_seconds()), same_site="lax",
                       https_only=settings.cookie_secure)
    # JSON escaping can grow code up to 6x (\uXXXX); leave room for that and the other fields.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_code_bytes * 6 + 16 * 1024)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
