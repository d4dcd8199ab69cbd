"""Database engine and sessions. SQLite gets WAL, a busy timeout and foreign keys on every connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.errors import AppError

# Explicit constraint names, so Alembic migrations name things the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # Grading threads and request handlers write concurrently; wait for the lock instead of failing.
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class NulInText(AppError, ValueError):
    """A value for the database holds U+0000. PostgreSQL cannot store it in text (SQLite can): every backend
    refuses it the same way, with a 400 that says so, instead of a 500 on one of them. A ValueError too, so what
    stores a grading's report (app/grading/claims.finish) keeps its verdict, as for any value a column refuses."""

    def __init__(self) -> None:
        super().__init__(400, "the request contains a NUL character (U+0000), which is not allowed in text",
                         page_message="The form contains a NUL character (U+0000), which is not allowed in text.")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


def _refuse_nul(_conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any,
                _executemany: bool) -> None:
    # Every statement's values, whichever route, form, LTI launch or command they came from: a check per input
    # would miss the next input. JSON columns arrive serialized, where NUL is the escape "\\u0000": storable.
    if _holds_nul(parameters):
        raise NulInText()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # A file database: a connection is cheap, and the request threads (anyio's 40) plus the grading and
        # sweeper threads must never wait 30 s for one of the default 5+10 and fail with a 500 (300 long polls
        # at once did). In-memory URLs keep SQLAlchemy's single-connection pools.
        pool = {} if ":memory:" in url or url.rstrip("/").endswith(":") else {"pool_size": 10, "max_overflow": 60}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (for threads outside requests)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
