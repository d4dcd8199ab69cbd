"""Web app settings, read from environment variables prefixed `GRADAX_`.

`Settings` extends the engine's `GraderSettings` (graders/settings.py): paths, the sandbox, limits and the warm
pool are declared there once, and the server hands its own settings to the grader as they are.
"""

from __future__ import annotations

import logging
import os
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from graders.settings import GraderSettings

if TYPE_CHECKING:
    from app.grading.claims import FairShare

log = logging.getLogger("gradax.config")

PLACEHOLDER_SECRET = "changethis"
SECRET_FILE = "secret_key"


class Settings(GraderSettings):
    # "dev" allows the placeholder secret (with a warning); anything else refuses it.
    environment: Literal["dev", "production"] = "dev"
    # Empty: SQLite in data_dir. PostgreSQL (scale-out): postgresql+psycopg://user:pass@host/db
    database_url: str = ""
    # Empty: generated once and kept in data_dir/secret_key (mode 0600).
    secret_key: str = ""
    access_token_minutes: int = 60 * 24 * 7
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106). Lower them only where memory is scarce (tests).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Log in and registration (app/core/throttle.py): tries per client address and per username per minute
    # (0: no limit; a class behind one NAT address shares the first), and password hashes computed at once
    # (each argon2id hash holds argon2_memory_kib and a core), waited for at most password_hash_wait_s (then
    # 503). Unset: half the cores, at least 1, so a flood of log ins leaves the other half to everyone else.
    auth_rate_per_client: int = 60
    auth_rate_per_username: int = 10
    password_hash_slots: int = 0
    password_hash_wait_s: float = 10.0
    # Who may create an account with a username and password (the API's `POST /auth/register` and the Register
    # page): "open", anyone who reaches the server; "invited", only a username or email a course roster lists
    # (a pending invitation); "closed", nobody (accounts from `gradax user create` and LMS launches). Grading is
    # shared fairly per account, so where one person could make many accounts, "invited" or "closed" keeps
    # every student to one share.
    registration: Literal["open", "invited", "closed"] = "open"
    # Session cookie: `Secure` only behind HTTPS; off by default so http://127.0.0.1 works.
    cookie_secure: bool = False
    # Submissions per user per minute, Run and Submit together; 0 turns the limit off (benchmarks).
    submit_rate: int = 20
    # In-process grading threads, i.e. gradings at once; 0 leaves attempts queued for external `gradax worker`s.
    # Unset: what the machine can serve (app/grading/capacity.py): one per core (affinity and cgroup CPU quota),
    # fewer where memory cannot give each `grading_slot_memory_mb`. More children than cores only stretches
    # every run (towards its wall-clock backstop) and hides the queue from the students waiting in it.
    grading_workers: int = -1
    # `gradax serve` prepares every problem not prepared yet (reference outputs, compile profiles: graders/
    # prepare.py) in the background at start and after a reload or upload, half the cores at a time; false:
    # only when a problem's first attempt is graded (it then waits, shown as "preparing").
    prepare_in_background: bool = True
    # Memory set aside per grading at once when the machine's capacity is counted (a warm child uses ~150-400
    # MB; a problem may allow up to its memory limit).
    grading_slot_memory_mb: Annotated[int, Field(gt=0)] = 1024
    # A long poll (`GET /submissions/{id}?wait=S`) is woken when its attempt is stored (by this server's
    # grading threads, or by a worker through Redis) and re-reads the attempt's status this often (once for all
    # its waiters) in case a wake-up was lost. Unset: 0.25 s with queue workers (a Redis message can be lost),
    # 2 s in-process (the grading threads wake waiters themselves; only another process writing the database
    # would go unnoticed).
    long_poll_recheck_s: float = -1.0
    # Seconds a client has to send a whole request (head and body) once it connects or its previous response
    # ended; a connection whose request is still incomplete then is closed (slow or half-sent requests).
    request_timeout_s: float = 20.0
    # Long polls one user may have waiting at once (a browser tab needs one); more get 429. 0: no cap.
    long_polls_per_user: int = 4
    # Backpressure: once this many attempts wait (queued) for grading, new submissions get 503 with Retry-After
    # instead of piling up behind a deadline burst; 0 turns the bound off.
    max_backlog: int = 500
    # Graceful shutdown (SIGTERM): gradings in progress may finish for this long; the rest stay queued for the
    # next start.
    shutdown_grace_s: float = 10.0
    # How often an attempt whose grading failed on the grader's side (internal_error) is retried.
    grading_retries: int = 2
    # Scale-out (docs/scale.md). "inprocess": grading threads in the server (the embedded default, no Redis);
    # "celery": the server only enqueues attempt ids on Redis and `gradax worker` processes grade them.
    grading_backend: Literal["inprocess", "celery"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A grader's claim on an attempt lasts this long and is renewed while it grades (for at most as long as a
    # grading of the problem can take); a grader that died or could not store its result stops renewing,
    # and the sweeper (in the server, in both backends) puts the attempt back in the queue.
    grading_lease_s: float = 60.0
    # Fair share: each author's gradings may take this many seconds per `grading_budget_window_s` (each
    # submission's own run, or its CPU time when known, retries included) before their next attempt waits;
    # 0: no budget. One running attempt per author holds regardless.
    grading_budget_s: float = 30.0
    grading_budget_window_s: Annotated[float, Field(gt=0)] = 60.0
    # A queued attempt whose message was sent longer ago than this is sent again (a lost message).
    requeue_after_s: float = 60.0
    sweep_interval_s: float = 5.0
    # Unacknowledged messages come back from Redis after this; the sweeper usually acts first.
    visibility_timeout_s: float = 3600.0
    worker_concurrency: int = 1
    # "json": one JSON object per log line (for log shippers); "text": human-readable.
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # LTI 1.3 (docs/lti.md). The address LMSs reach this server at (https://gradax.example.edu): launch, login,
    # JWKS and deep-link URLs in the tool configuration and in signed messages. Empty: the request's own address.
    public_url: str = ""
    # A platform's key set is fetched again after this long (and at once for an unknown key id, at most every 30 s).
    lti_jwks_cache_s: float = 3600.0
    # Grade passback: failed posts are retried with exponential backoff from lti_retry_base_s up to lti_retry_max_s,
    # for ever (the instructor sees them as failing); every score is also re-derived this often in case a
    # change was not noticed (0: only at start and on change).
    lti_retry_base_s: float = 5.0
    lti_retry_max_s: float = 3600.0
    lti_reconcile_s: float = 600.0
    # Names and Roles: every mapped LMS course's roster is synced this often (a new one at once; 0: only when an
    # instructor asks on /lti/status or with `gradax lti sync-roster`).
    lti_roster_sync_s: float = 21600.0
    # Outbound calls to platforms (key sets, tokens, scores, rosters) give up after this long.
    lti_http_timeout_s: float = 10.0

    @model_validator(mode="after")
    def _default_password_hash_slots(self) -> Settings:
        if self.password_hash_slots <= 0:
            self.password_hash_slots = max(1, (os.cpu_count() or 2) // 2)
        return self

    @model_validator(mode="after")
    def _default_long_poll_recheck(self) -> Settings:
        if self.long_poll_recheck_s < 0:
            self.long_poll_recheck_s = 0.25 if self.grading_backend == "celery" else 2.0
        return self

    @model_validator(mode="after")
    def _default_grading_workers(self) -> Settings:
        if self.grading_workers < 0:
            from app.grading.capacity import measure

            self.grading_workers = measure(self.grading_slot_memory_mb).slots
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.secret_key == PLACEHOLDER_SECRET:
            if self.environment != "dev":
                raise ValueError(f"GRADAX_SECRET_KEY is the placeholder {PLACEHOLDER_SECRET!r}; "
                                 "set a real secret (or unset it to generate one) outside dev")
            log.warning("GRADAX_SECRET_KEY is the placeholder %r: fine for dev only", PLACEHOLDER_SECRET)
        return self

    def fair_share(self) -> FairShare:
        from app.grading.claims import FairShare

        return FairShare(budget_s=self.grading_budget_s, window_s=self.grading_budget_window_s)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gradax.db').resolve()}"

    def resolved_secret(self) -> str:
        """The signing secret: the configured one, else the one stored in data_dir (created on first use)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: if two processes race, one creates the file and the other reads it.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise ValueError(f"{path} holds a secret shorter than 32 characters; delete it to regenerate")
        return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
