"""`gradax backup PATH`: a consistent copy of the SQLite database while the server keeps running.

SQLite's online backup API (`sqlite3.Connection.backup`) copies the database page by page and restarts when
another connection writes meanwhile, so the copy is one committed state: every attempt committed before the
copy finished is in it, nothing half-written is. Copying the file with `cp` instead can tear a page or miss
what is still only in the WAL file. Restore: stop the server, put the copy at DATA_DIR/gradax.db (removing any
gradax.db-wal / -shm beside it), start the server.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Pages copied per step; between steps writers get the lock, so a backup never stalls the server for long.
PAGES_PER_STEP = 256


def sqlite_path(database_url: str) -> Path:
    """The file behind a `sqlite:///...` URL (SQLAlchemy's form)."""
    if not database_url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite database URL: {database_url!r} (back up PostgreSQL with pg_dump)")
    path = urlsplit(database_url).path
    return Path(path[1:] if path.startswith("//") else path)


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy `source` to `target` with the online backup API; returns the number of attempts in the copy."""
    if not source.exists():
        raise FileNotFoundError(f"no database at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            # A standalone file: no WAL beside it, readable by any SQLite.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise RuntimeError(f"the copy failed its integrity check: {check}")
            attempts = int(dst.execute("SELECT count(*) FROM attempts").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    # Rename last, so `target` is only ever a complete backup.
    os.replace(partial, target)
    return attempts


def cmd_backup(args: argparse.Namespace) -> int:
    from app.core.config import get_settings

    settings = get_settings()
    try:
        source = sqlite_path(settings.sqlalchemy_url)
        attempts = backup_sqlite(source, Path(args.path))
    except (ValueError, FileNotFoundError, RuntimeError, sqlite3.Error) as exc:
        print(f"gradax backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {source} to {args.path} ({attempts} attempts)")
    return 0


def register_backup(subparsers: Any) -> None:
    p = subparsers.add_parser("backup", help="copy the SQLite database to PATH while the server runs "
                                             "(SQLite online backup API; see docs/reliability.md)")
    p.add_argument("path", help="where to write the copy (written as PATH.partial, then renamed)")
    p.set_defaults(func=cmd_backup)
