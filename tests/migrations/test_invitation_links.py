"""Migration 0014: every pending invitation gets the token of its link, each its own, so the instructor can hand
out links for a roster uploaded before it (an email invitation is taken only through its link now)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.migrate import upgrade_to_head
from migrations.conftest import database_at


def test_pending_invitations_get_links(tmp_path: Path) -> None:
    engine = database_at(tmp_path, "0013")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title, timezone, content_hash, available, created_at, "
                             "updated_at) VALUES ('dl', 'DL', 'UTC', 'h', true, '2026-01-01', '2026-01-01')"))
        conn.execute(sa.text("INSERT INTO course_invitations (course_id, username, email, role, invited_at) VALUES "
                             "('dl', NULL, 'ada@uni.test', 'student', '2026-01-01'), "
                             "('dl', 'bob', NULL, 'student', '2026-01-01')"))
    upgrade_to_head(engine)
    with engine.connect() as conn:
        tokens = [t for (t,) in conn.execute(sa.text("SELECT token FROM course_invitations"))]
    engine.dispose()
    assert len(tokens) == 2 and len(set(tokens)) == 2 and all(t and len(t) >= 32 for t in tokens)
